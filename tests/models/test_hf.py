"""The Hugging Face adapter (hf:PATH) against transformers' own loss on a small random GPT-2."""

import pytest
import torch

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from robustbench_bytes import scoring  # noqa: E402
from robustbench_bytes.data import Corpus  # noqa: E402
from robustbench_bytes.errors import BadInput  # noqa: E402
from robustbench_bytes.models import load_model  # noqa: E402
from support.hf_models import TEXT, make_tiny_gpt2  # noqa: E402


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return make_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))


def hf_loss_sum(module, inputs, targets):
    """transformers' own loss (its ForCausalLMLoss, mean over labelled positions) times their count.
    targets[i] is the label of position i (already shifted); -100 marks positions not scored."""
    targets = torch.tensor([targets])
    with torch.no_grad():
        out = module(input_ids=torch.tensor([inputs]), labels=torch.tensor([inputs]), shift_labels=targets)
    return out.loss.item() * int((targets != -100).sum())


def test_adapter_matches_transformers_loss_in_one_window(gpt2_dir):
    model = load_model(f"hf:{gpt2_dir}")
    assert model.level == "subword" and model.architecture == "gpt2" and model.max_length == 16
    assert model.prefix == "BOS 0 (<|endoftext|>)"
    text = "the LORD God"
    ids = model.tokenizer.encode(text)
    assert 2 < len(ids) < 16 and 0 not in ids
    cell = scoring.score_corpus(model, Corpus("c", [text]), progress=False)
    expected = hf_loss_sum(model.module, [0] + ids[:-1], ids)
    assert cell.result.nll == pytest.approx(expected, rel=1e-5)
    assert cell.result.tokens == len(ids)


def test_adapter_matches_transformers_loss_over_disjoint_windows(gpt2_dir):
    model = load_model(f"hf:{gpt2_dir}")
    doc = TEXT + "And the woman said"
    ids = model.tokenizer.encode(doc)
    n = len(ids)
    assert n > 40 and n % 16  # a short final window, which lm-evaluation-harness feeds a full context
    seq = [0] + ids
    # lm-evaluation-harness's disjoint windows, built by hand: targets in blocks of 16; each block is fed
    # the 16 tokens (at most) that end just before its last target, and only the block's targets are labelled
    expected = 0.0
    for lo in range(0, n, 16):
        hi = min(n, lo + 16)  # targets ids[lo:hi] = seq[lo + 1 : hi + 1]
        start = max(0, hi - 16)
        inputs = seq[start:hi]
        labels = [-100] * (len(inputs) - (hi - lo)) + ids[lo:hi]
        expected += hf_loss_sum(model.module, inputs, labels)
    cell = scoring.score_corpus(model, Corpus("c", [doc]), batch_size=3, progress=False)
    assert cell.result.nll == pytest.approx(expected, rel=1e-5)
    assert cell.result.scoring["max_length"] == 16


def test_missing_hf_path_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no such directory"):
        load_model(f"hf:{tmp_path / 'nope'}")
    with pytest.raises(BadInput, match="no config.json and no .gguf"):
        load_model(f"hf:{tmp_path}")


def test_gguf_parameter_count_reads_the_header(tmp_path):
    gguf = pytest.importorskip("gguf")
    import numpy as np

    from robustbench_bytes.models.hf import gguf_parameter_count

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("general.name", "tiny")
    writer.add_array("tokenizer.ggml.tokens", ["a", "bb", "ccc"])
    writer.add_uint32("llama.context_length", 16)
    writer.add_tensor("token_embd.weight", np.zeros((3, 4), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert gguf_parameter_count(path) == 3 * 4 + 4
    (tmp_path / "bad.gguf").write_bytes(b"GGML" + bytes(20))
    with pytest.raises(ValueError, match="not a GGUF file"):
        gguf_parameter_count(tmp_path / "bad.gguf")
