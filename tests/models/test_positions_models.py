"""Length extrapolation and models: `run --max-length` for rotary (RoPE) hf: models, refused past learned positions;
hf tokenizers' byte lengths; the training length a checkpoint declares, recorded with its cells."""

import json

import pytest
import torch
from click.testing import CliRunner

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from robustbench_bytes import scoring  # noqa: E402

from robustbench_bytes.models import lengths
from robustbench_bytes.cli import cli  # noqa: E402
from robustbench_bytes.data import Corpus  # noqa: E402
from robustbench_bytes.errors import BadInput  # noqa: E402
from robustbench_bytes.models import load_model  # noqa: E402

TEXT = "And God said, Let there be light: and there was light. \u00e9t\u00e9 \u4e16\u754c\n"


def save_tokenizer(folder, byte_level=True):
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token=None if byte_level else "[UNK]"))
    if byte_level:
        tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tokenizers.decoders.ByteLevel()
        trainer = tokenizers.trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                 initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    else:
        tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
        trainer = tokenizers.trainers.BpeTrainer(vocab_size=150, special_tokens=["<|endoftext|>", "[UNK]"])
    tok.train_from_iterator([TEXT] * 3, trainer)
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                         eos_token="<|endoftext|>").save_pretrained(folder)
    return tok.get_vocab_size()


@pytest.fixture(scope="module")
def hf_models(tmp_path_factory):
    """A tiny Llama (rotary positions) and a tiny GPT-2 (learned positions), both with 16 positions; the Llama's
    config.json declares a training length."""
    root = tmp_path_factory.mktemp("hf")
    llama, gpt2 = root / "llama", root / "gpt2"
    vocab = save_tokenizer(llama)
    save_tokenizer(gpt2)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=16, bos_token_id=0, eos_token_id=0)).save_pretrained(llama)
    config = json.loads((llama / "config.json").read_text())
    config["robustbench"] = {"train_length_bytes": 48}
    (llama / "config.json").write_text(json.dumps(config))
    transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=vocab, n_positions=16, n_embd=16, n_layer=1, n_head=2, bos_token_id=0,
        eos_token_id=0)).save_pretrained(gpt2)
    return llama, gpt2


def test_rotary_models_take_windows_past_their_context_and_learned_positions_do_not(hf_models):
    llama, gpt2 = (load_model(f"hf:{d}") for d in hf_models)
    assert lengths.extends_past_window(llama) and not lengths.extends_past_window(gpt2)
    corpus = Corpus("c", [TEXT * 3])
    cell = scoring.score_corpus(llama, corpus, max_length=64, progress=False)
    assert cell.result.scoring["max_length"] == 64 and cell.result.train_length_bytes == 48
    with pytest.raises(BadInput, match="at most 16 tokens"):
        scoring.score_corpus(gpt2, corpus, max_length=64, progress=False)


def test_hf_tokenizer_byte_lengths_sum_to_the_text_and_follow_its_tokens(hf_models, tmp_path):
    model = load_model(f"hf:{hf_models[0]}")
    ids, lengths = model.tokenizer.encode_with_byte_lengths(TEXT)
    assert ids == model.tokenizer.encode(TEXT) and lengths.sum() == len(TEXT.encode())
    pieces = model.tokenizer.tokenizer.convert_ids_to_tokens(ids)
    assert lengths.tolist() == [len(p) for p in pieces]  # byte-level pieces: one character per byte
    save_tokenizer(tmp_path, byte_level=False)  # offsets for a tokenizer that drops spaces
    from robustbench_bytes.models.hf import HFTokenizer

    other = HFTokenizer(transformers.AutoTokenizer.from_pretrained(tmp_path))
    ids, lengths = other.encode_with_byte_lengths(TEXT)
    assert len(ids) == len(lengths) and lengths.sum() == len(TEXT.encode())


def test_run_max_length_is_recorded_and_part_of_the_cell_fingerprint(hf_models, tmp_path):
    corpus = tmp_path / "doc.txt"
    corpus.write_text(TEXT * 3, encoding="utf-8")
    out = tmp_path / "run"
    args = ["run", "--model", f"hf:{hf_models[0]}", "--corpus", str(corpus), "--out", str(out), "--quiet"]
    result = CliRunner().invoke(cli, args + ["--max-length", "64"])
    assert result.exit_code == 0, result.output
    first = json.loads((out / "results.json").read_text())[0]
    assert first["scoring"]["max_length"] == 64 and first["positions"]["edges"][0] == 0
    result = CliRunner().invoke(cli, args + ["--max-length", "32"])
    assert result.exit_code == 0 and "1 scored, 0 reused" in result.output
    assert json.loads((out / "results.json").read_text())[0]["scoring"]["max_length"] == 32
    result = CliRunner().invoke(cli, ["run", "--model", f"hf:{hf_models[1]}", "--corpus", str(corpus), "--out",
                                      str(tmp_path / "gpt2"), "--quiet", "--max-length", "64"])
    assert result.exit_code == 1 and "at most 16 tokens" in result.output
