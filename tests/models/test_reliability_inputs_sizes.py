"""Reliability: checkpoint configs with huge or tiny sizes or values of the wrong type are one line naming
config.json and the key, exit 2, before any network is built (models/base.py SIZE_LIMITS, then
checkpoint.check_sizes against the weight file); a zoo folder with a broken config.json too."""

import json
import shutil

import pytest

from support.cli_assertions import assert_one_line_error
from robustbench_bytes import models
from robustbench_bytes.cli import cli
from robustbench_bytes.models.base import SIZE_LIMITS


def score(runner, model, corpus):
    return runner.invoke(cli, ["score", "--quiet", "--model", str(model), "--corpus", str(corpus)])


def edit_config(directory, **changes):
    path = directory / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if key.startswith("ssm_cfg."):
            config.setdefault("ssm_cfg", {})[key.split(".", 1)[1]] = value
        else:
            config[key] = value
    path.write_text(json.dumps(config))


@pytest.mark.parametrize("key,value", [
    ("n_layer", 10**6), ("vocab_size", 10**12), ("d_model", 2**40), ("ssm_cfg.d_state", 10**9),
    ("ssm_cfg.d_conv", 10**7), ("pad_vocab_size_multiple", 2**62), ("ssm_cfg.expand", 1e300),
    ("ssm_cfg.expand", 1e-9), ("d_model", -3), ("n_layer", 0), ("n_layer", True), ("n_layer", 2.0),
    ("vocab_size", "256"), ("ssm_cfg.dt_rank", 10**12),
])
def test_mamba_sizes_out_of_bounds(runner, tiny_mamba, tiny_corpus, key, value):
    edit_config(tiny_mamba, **{key: value})
    assert_one_line_error(score(runner, tiny_mamba, tiny_corpus), "config.json", key.split(".")[-1])


def test_a_layer_count_within_bounds_is_checked_against_the_weights_before_building(runner, tiny_mamba,
                                                                                   tiny_corpus):
    edit_config(tiny_mamba, n_layer=SIZE_LIMITS["n_layer"])
    assert_one_line_error(score(runner, tiny_mamba, tiny_corpus), "config.json", "n_layer = 1024",
                          "holds 1 layer")


def test_an_embedding_width_that_disagrees_with_the_weights(runner, tiny_mamba, tiny_corpus):
    edit_config(tiny_mamba, d_model=4096)
    assert_one_line_error(score(runner, tiny_mamba, tiny_corpus), "config.json", "backbone.embedding.weight",
                          "(256, 4096)")


@pytest.fixture
def tiny_gpt(tmp_path):
    import torch

    from robustbench_bytes.models.checkpoint import save_pretrained
    from robustbench_bytes.models.transformer import GPT, GPTConfig

    torch.manual_seed(0)
    config = GPTConfig(vocab_size=256, block_size=64, n_layer=1, n_head=2, d_model=16)
    return save_pretrained(GPT(config), tmp_path / "gpt", config.to_dict())


@pytest.mark.parametrize("key,value,needle", [
    ("n_layer", 10**6, "n_layer"), ("block_size", 10**9, "block_size"), ("n_head", 0, "n_head"),
    ("mlp_ratio", 10**4, "mlp_ratio"), ("n_layer", 3, "holds 1 layer"), ("block_size", 4096, "position.weight"),
])
def test_transformer_sizes(runner, tiny_gpt, tiny_corpus, key, value, needle):
    edit_config(tiny_gpt, **{key: value})
    assert_one_line_error(score(runner, tiny_gpt, tiny_corpus), "config.json", needle)


@pytest.mark.parametrize("text,needle", [("{", "not valid JSON"), ("[1, 2]", "expected a JSON object"),
                                         ('{"d_model": ' + "9" * 5000 + "}", "digits")])
def test_a_zoo_folder_with_a_broken_config(runner, tiny_mamba, tmp_path, monkeypatch, text, needle):
    zoo = tmp_path / "zoo"
    shutil.copytree(tiny_mamba, zoo / "broken")
    (zoo / "broken" / "config.json").write_text(text)
    monkeypatch.setattr(models, "ZOO_DIR", zoo)
    assert_one_line_error(runner.invoke(cli, ["models"]), "config.json", needle)


def test_a_zoo_config_whose_parameter_count_is_not_a_number_lists_as_unknown(runner, tiny_mamba, tmp_path,
                                                                          monkeypatch):
    zoo = tmp_path / "zoo"
    shutil.copytree(tiny_mamba, zoo / "odd")
    (zoo / "odd" / "model.safetensors").unlink()  # the count then comes from config.json's robustbench block
    edit_config(zoo / "odd", robustbench={"parameters": "many"})
    monkeypatch.setattr(models, "ZOO_DIR", zoo)
    result = runner.invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    line = next(l for l in result.output.splitlines() if l.startswith("odd"))
    assert line.split()[3] == "?", line
