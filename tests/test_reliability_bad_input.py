"""Reliability, class 5: bad input anywhere (checkpoint configs and weights, options, run folders, corpora,
training configs and checkpoints, zoo configs) is one line naming the input and exit 2, never a traceback."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from support.run_fakes import write_fake_run

from support.cli_assertions import assert_one_line_error
from robustbench_bytes.cli import cli


@pytest.fixture
def model(tiny_mamba):
    return tiny_mamba


@pytest.fixture
def corpus(tiny_corpus):
    return tiny_corpus


def score(runner, model, corpus, *extra):
    return runner.invoke(cli, ["score", "--quiet", "--model", str(model), "--corpus", str(corpus), *extra])


@pytest.mark.parametrize("key,value,needle", [
    ("d_model", "abc", "d_model"), ("d_model", 32.5, "d_model"), ("d_model", 0, "d_model"),
    ("d_model", math.nan, "d_model"), ("n_layer", "2", "n_layer"), ("vocab_size", -5, "vocab_size"),
    ("tie_embeddings", "no", "tie_embeddings"), ("rms_norm", 1, "rms_norm"), ("ssm_cfg", "fast", "ssm_cfg"),
    ("ssm_cfg", {"d_state": 0}, "d_state"), ("norm_epsilon", -1, "norm_epsilon"),
    ("robustbench", "crlf", "robustbench"), ("robustbench", {"newline": "cr"}, "newline"),
    ("robustbench", {"prefix_byte": 300}, "prefix_byte"),
])
def test_checkpoint_config_values_of_the_wrong_type_or_range(runner, model, corpus, key, value, needle):
    path = model / "config.json"
    config = json.loads(path.read_text())
    config[key] = value
    path.write_text(json.dumps(config))
    assert_one_line_error(score(runner, model, corpus), "config.json", needle)


@pytest.mark.parametrize("dtype", [torch.int64, torch.complex64, torch.bool])
def test_weights_that_are_not_real_floats_are_refused(runner, model, corpus, dtype):
    weights = model / "model.safetensors"
    state = load_file(str(weights))
    key = sorted(state)[0]
    state[key] = state[key].to(dtype) if dtype != torch.complex64 else torch.complex(state[key], state[key])
    save_file(state, str(weights))
    assert_one_line_error(score(runner, model, corpus), key, "floating-point")


@pytest.mark.parametrize("args,needle", [
    (["--device", "meta"], "meta"), (["--device", "tpu"], "tpu"), (["--noise", "repeat:p=0.1,max=1000000"], "max"),
    (["--noise", "drop:p=nan"], "drop:p=nan"), (["--seed", "-1"], "seed"), (["--batch-size", "0"], "batch"),
    (["--noise", ""], "empty"), (["--noise", "paper"], "preset"),
])
def test_score_options(runner, model, corpus, args, needle):
    assert_one_line_error(score(runner, model, corpus, *args), needle)


def test_a_lone_surrogate_in_jsonl_is_named(runner, model, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "bad \\ud800 here"}\n', encoding="utf-8")
    assert_one_line_error(score(runner, model, path), f"{path}:2", "surrogate")


def test_report_confidence_nan_and_the_same_run_twice(runner, tmp_path):
    write_fake_run(tmp_path / "a" / "run", {"clean": {"m": 2.0}})
    write_fake_run(tmp_path / "b" / "run", {"clean": {"m": 2.0}})
    out = tmp_path / "rep"
    assert_one_line_error(runner.invoke(cli, ["report", str(tmp_path / "a" / "run"), "--confidence", "nan", "-o", str(out)]),
                    "confidence")
    assert_one_line_error(runner.invoke(cli, ["report", str(tmp_path / "a" / "run"), str(tmp_path / "a" / "run"),
                                        "-o", str(out)]), "twice")
    assert_one_line_error(runner.invoke(cli, ["report", str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run"),
                                        "-o", str(out)]), "named 'run'")
    assert_one_line_error(runner.invoke(cli, ["report", str(tmp_path / "a" / "run"), "-o", ""]), "-o")
    assert not out.exists()


@pytest.mark.parametrize("key,value", [("lr", math.nan), ("lr", math.inf), ("betas", [0.9, math.nan]),
                                       ("grad_clip", -math.inf), ("steps", 2.5), ("train_bytes", 100)])
def test_training_configs_with_non_finite_or_wrong_values(runner, tmp_path, key, value):
    raw = {"name": "x", "model": {"architecture": "mamba", "config": {"d_model": 8, "n_layer": 1}},
           "data": {"train": ["kjv:validation"]}, key: value}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(raw))  # json.dumps writes NaN/Infinity, which Python's json reads back
    assert_one_line_error(runner.invoke(cli, ["train", "--config", str(path), "--out", str(tmp_path / "o"), "--quiet"]),
                    key if key != "train_bytes" else "seq_bytes")


def test_a_resume_checkpoint_missing_keys(runner, tmp_path):
    raw = {"name": "x", "model": {"architecture": "mamba", "config": {"d_model": 8, "n_layer": 1}},
           "data": {"train": ["kjv:validation"]}, "steps": 2}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(raw))
    ckpt = tmp_path / "o" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"step": 1, "model": {}}, ckpt)
    assert_one_line_error(runner.invoke(cli, ["train", "--config", str(path), "--out", str(tmp_path / "o"), "--resume",
                                        "--quiet"]), "last.pt", "optimizer")


def test_run_into_a_folder_that_is_not_a_run_directory(runner, model, corpus, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / ".notes.tmp").write_text("keep")
    (folder / "thesis.tex").write_text("keep")
    assert_one_line_error(runner.invoke(cli, ["run", "--quiet", "--model", str(model), "--corpus", str(corpus),
                                        "--out", str(folder)]), "not a run directory")
    assert sorted(p.name for p in folder.iterdir()) == [".notes.tmp", "thesis.tex"]


def test_run_seed_minus_one_scores_nothing(runner, model, corpus, tmp_path):
    out = tmp_path / "run"
    assert_one_line_error(runner.invoke(cli, ["run", "--quiet", "--model", str(model), "--corpus", str(corpus),
                                        "--seed", "-1", "--out", str(out)]), "--seed")
    assert not out.exists()
