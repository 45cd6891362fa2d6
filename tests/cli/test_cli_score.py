"""`robustbench score` and `robustbench models` end to end through click's CliRunner: JSON output, the
noise option against a file noised beforehand, and bad inputs (one line, exit 2)."""

import json
import math

import pytest
import torch

from support.cli_assertions import assert_one_line_error
from robustbench_bytes.cli import cli
from robustbench_bytes.models import checkpoint
from robustbench_bytes.models.mamba import MambaConfig, MambaLM
from robustbench_bytes.models.transformer import GPT, GPTConfig

TEXT = "In the beginning God created the heaven and the earth.\nAnd the earth was without form, and void.\n"

MAMBA_CONFIG = {"d_model": 24, "n_layer": 2, "vocab_size": 256, "ssm_cfg": {"d_state": 4}, "rms_norm": False,
                "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8,
                "tie_embeddings": False}


def weights_sha256(directory):
    from robustbench_bytes.files import sha256_file
    from robustbench_bytes.models.checkpoint import weight_file

    return sha256_file(weight_file(directory))


@pytest.fixture(scope="module")
def mamba_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mambabyte")
    torch.manual_seed(0)
    checkpoint.save_pretrained(MambaLM(MambaConfig.from_dict(MAMBA_CONFIG)), folder, MAMBA_CONFIG)
    return folder


@pytest.fixture(scope="module")
def gpt_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt")
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=256, block_size=32, n_layer=1, n_head=2, d_model=16)
    checkpoint.save_pretrained(GPT(config), folder, config.to_dict())
    return folder


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "genesis.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture
def score(runner):
    def score(*args):
        return runner.invoke(cli, ["score", "--quiet", *map(str, args)])

    return score


@pytest.mark.parametrize("which", ["mamba_dir", "gpt_dir"])
def test_json_is_one_result_object(which, request, corpus_file, score):
    folder = request.getfixturevalue(which)
    result = score("--model", folder, "--corpus", corpus_file, "--json")
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    assert r["model"] == str(folder) and r["noise"] == "clean" and r["documents"] == 1
    assert r["level"] == "byte" and r["architecture"] == ("mamba" if which == "mamba_dir" else "transformer")
    assert r["bytes"] == r["clean_bytes"] == len(TEXT.encode()) == r["tokens"]
    assert r["bits_per_byte"] == pytest.approx(r["nll"] / (r["bytes"] * math.log(2)))
    assert r["checkpoint_sha256"] == weights_sha256(folder)
    assert r["prefix"].startswith("byte 10")


def test_human_summary(mamba_dir, corpus_file, score):
    result = score("--model", mamba_dir, "--corpus", corpus_file)
    assert result.exit_code == 0, result.output
    assert "bits/byte" in result.stdout and "word ppl" in result.stdout


def test_noise_option_equals_scoring_a_file_noised_beforehand(mamba_dir, corpus_file, tmp_path, runner, score):
    noised = tmp_path / "noised.txt"
    applied = runner.invoke(cli, ["noise", "apply", "--noise", "drop:p=0.2+swap:p=0.1", "--seed", "3",
                                       str(corpus_file), "-o", str(noised)])
    assert applied.exit_code == 0, applied.output
    assert noised.read_text(encoding="utf-8") != TEXT
    on_the_fly = json.loads(score("--model", mamba_dir, "--corpus", corpus_file, "--noise",
                                  "drop:p=0.2+swap:p=0.1", "--seed", 3, "--json").stdout)
    beforehand = json.loads(score("--model", mamba_dir, "--corpus", noised, "--json").stdout)
    assert on_the_fly["noise"] == "drop:p=0.2+swap:p=0.1" and on_the_fly["seed"] == 3
    assert on_the_fly["nll"] == pytest.approx(beforehand["nll"], rel=1e-6)
    assert on_the_fly["bytes"] == beforehand["bytes"] < on_the_fly["clean_bytes"]
    assert on_the_fly["clean_bytes"] == len(TEXT.encode())


def test_a_preset_or_unknown_noise_is_bad_input(mamba_dir, corpus_file, score):
    assert_one_line_error(score("--model", mamba_dir, "--corpus", corpus_file, "--noise", "paper"), "preset")
    assert_one_line_error(score("--model", mamba_dir, "--corpus", corpus_file, "--noise", "dorp:p=0.1"), "dorp")


def test_missing_directory(tmp_path, corpus_file, score):
    assert_one_line_error(score("--model", tmp_path / "missing", "--corpus", corpus_file), "missing")


@pytest.mark.parametrize("field", ["d_model", "vocab_size"])
def test_config_without_a_required_field(mamba_dir, tmp_path, corpus_file, field, score):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes((mamba_dir / "model.safetensors").read_bytes())
    (folder / "config.json").write_text(json.dumps({k: v for k, v in MAMBA_CONFIG.items() if k != field}))
    assert_one_line_error(score("--model", folder, "--corpus", corpus_file), field, "config.json")


def test_gpt_config_without_block_size(gpt_dir, tmp_path, corpus_file, score):
    folder = tmp_path / "g"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes((gpt_dir / "model.safetensors").read_bytes())
    config = json.loads((gpt_dir / "config.json").read_text())
    del config["block_size"]
    (folder / "config.json").write_text(json.dumps(config))
    assert_one_line_error(score("--model", folder, "--corpus", corpus_file), "block_size")


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_truncated_weight_file(mamba_dir, tmp_path, corpus_file, weights, score):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(MAMBA_CONFIG))
    if weights == "model.safetensors":
        data = (mamba_dir / "model.safetensors").read_bytes()
    else:
        torch.save(checkpoint.load_state_dict(mamba_dir), folder / "full.bin")
        data = (folder / "full.bin").read_bytes()
        (folder / "full.bin").unlink()
    (folder / weights).write_bytes(data[:len(data) // 2])
    assert_one_line_error(score("--model", folder, "--corpus", corpus_file), weights)


class NotATensor:
    pass


def test_a_pickle_that_is_not_plain_tensors_is_refused(tmp_path, corpus_file, score):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(MAMBA_CONFIG))
    torch.save({"backbone.embedding.weight": NotATensor()}, folder / "pytorch_model.bin")
    assert_one_line_error(score("--model", folder, "--corpus", corpus_file), "pytorch_model.bin", "refused")


def test_wrong_shape_names_the_key_and_both_shapes(mamba_dir, tmp_path, corpus_file, score):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(MAMBA_CONFIG))
    state = checkpoint.load_state_dict(mamba_dir)
    state["backbone.layers.1.mixer.conv1d.weight"] = torch.zeros(48, 1, 3)
    torch.save(state, folder / "pytorch_model.bin")
    assert_one_line_error(score("--model", folder, "--corpus", corpus_file),
                   "backbone.layers.1.mixer.conv1d.weight", "(48, 1, 4)", "(48, 1, 3)")


def test_gpt_wrong_shape(gpt_dir, tmp_path, corpus_file, score):
    folder = tmp_path / "gs"
    folder.mkdir()
    (folder / "config.json").write_text((gpt_dir / "config.json").read_text())
    state = checkpoint.load_state_dict(gpt_dir)
    state["position.weight"] = torch.zeros(16, 16)
    torch.save(state, folder / "pytorch_model.bin")
    assert_one_line_error(score("--model", folder, "--corpus", corpus_file), "position.weight", "(16, 16)", "(32, 16)")


def test_corpus_that_is_not_utf8(mamba_dir, tmp_path, score):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9 au lait".encode("latin-1"))
    assert_one_line_error(score("--model", mamba_dir, "--corpus", path), "latin1.txt", "offset 3")


def test_window_options_are_refused_for_streamed_models(mamba_dir, corpus_file, score):
    assert_one_line_error(score("--model", mamba_dir, "--corpus", corpus_file, "--stride", 4), "--stride")


def test_window_options_reach_the_gpt(gpt_dir, corpus_file, score):
    result = score("--model", gpt_dir, "--corpus", corpus_file, "--context", 8, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scoring"] == {"method": "rolling_windows", "max_length": 32,
                                                    "context": 8, "stride": 25}
    assert_one_line_error(score("--model", gpt_dir, "--corpus", corpus_file, "--max-length", 64), "at most 32")


def test_nan_score_exits_1(tmp_path, corpus_file, score):
    folder = tmp_path / "nan"
    torch.manual_seed(0)
    model = MambaLM(MambaConfig.from_dict(MAMBA_CONFIG))
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    checkpoint.save_pretrained(model, folder, MAMBA_CONFIG)
    result = score("--model", folder, "--corpus", corpus_file)
    assert result.exit_code == 1
    assert "non-finite" in result.output and "document 0" in result.output


def test_models_lists_json(runner):
    result = runner.invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    for e in entries:
        assert {"name", "level", "architecture", "parameters", "size_bytes", "provenance"} <= set(e)


def test_mambabyte_release_format_with_crlf(tmp_path, corpus_file, score):
    """As released: config.json without architecture, an fp32 pytorch_model.bin state dict; the PG19 models
    record newline=crlf (config.json's "robustbench" object), so each line break costs two tokens."""
    config = {"d_model": 24, "n_layer": 2, "vocab_size": 256, "ssm_cfg": {"expand": 2}, "rms_norm": False,
              "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8,
              "tie_embeddings": False}
    torch.manual_seed(1)
    state = MambaLM(MambaConfig.from_dict(config)).state_dict()
    for folder, extra in ((tmp_path / "lf", {}), (tmp_path / "crlf", {"robustbench": {"newline": "crlf"}})):
        folder.mkdir()
        torch.save(state, folder / "pytorch_model.bin")
        (folder / "config.json").write_text(json.dumps(dict(config, **extra)))
    lf = json.loads(score("--model", tmp_path / "lf", "--corpus", corpus_file, "--json").stdout)
    crlf = json.loads(score("--model", tmp_path / "crlf", "--corpus", corpus_file, "--json").stdout)
    assert lf["tokens"] == lf["bytes"] == len(TEXT.encode())
    assert crlf["tokens"] == lf["tokens"] + TEXT.count("\n") and crlf["bytes"] == lf["bytes"]
    assert crlf["nll"] != lf["nll"]


def test_subword_mamba_with_tokenizer_json(tmp_path, corpus_file, score):
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=280, special_tokens=["<|endoftext|>"],
                                             initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TEXT], trainer)
    config = dict(MAMBA_CONFIG, vocab_size=tok.get_vocab_size(), rms_norm=True, tie_embeddings=True)
    torch.manual_seed(0)
    checkpoint.save_pretrained(MambaLM(MambaConfig.from_dict(config)), tmp_path / "m", config,
                               tokenizer_json=tok.to_str())
    result = score("--model", tmp_path / "m", "--corpus", corpus_file, "--json")
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)
    assert r["level"] == "subword" and r["architecture"] == "mamba"
    assert r["tokens"] == len(tok.encode(TEXT, add_special_tokens=False).ids) < r["bytes"]
    assert "<|endoftext|>" in r["prefix"]
