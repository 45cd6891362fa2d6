"""Reliability of `robustbench train`: it writes only into a folder that is missing, empty or its own
(files.check_output_dir, the rule run and report use too); bounded config values and checkpoints of the wrong
types are one line and exit 2; a training that diverges (NaN) stops with one line and exit 1 and never
publishes a model; Ctrl-C is exit 130."""

import json
import math

import pytest
import torch

from support.cli_assertions import assert_one_line_error
from robustbench_bytes import training as train_module
from robustbench_bytes.cli import cli
from robustbench_bytes.errors import BadInput, RunFailed
from robustbench_bytes.files import check_output_dir, sha256_file
from robustbench_bytes.training import TrainConfig, check_publishable, train

TINY = {"name": "x", "model": {"architecture": "mamba", "config": {"d_model": 8, "n_layer": 1}},
        "tokenizer": {"type": "bytes"}, "data": {"train": ["kjv:validation"], "validation": [], "test": []},
        "steps": 2, "batch_size": 2, "seq_len": 16, "warmup_steps": 0, "checkpoint_every": 1, "threads": 1}


def invoke(runner, tmp_path, raw, out, *extra):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(raw))
    return runner.invoke(cli, ["train", "--config", str(path), "--out", str(out), "--quiet", *extra])


def snapshot(folder):
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_train_into_someone_elses_checkpoint_folder_is_refused(runner, tmp_path, tiny_mamba):
    before = snapshot(tiny_mamba)
    assert_one_line_error(invoke(runner, tmp_path, TINY, tiny_mamba), str(tiny_mamba), "not empty")
    assert snapshot(tiny_mamba) == before


def test_train_into_a_folder_of_user_files_is_refused(runner, tmp_path):
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "README.md").write_text("mine")
    assert_one_line_error(invoke(runner, tmp_path, TINY, folder), "not empty")
    assert snapshot(folder) == {"sub/README.md": sha256_file(folder / "sub" / "README.md")}


def test_the_folder_rule_accepts_missing_empty_leftovers_and_its_own(tmp_path):
    check_output_dir(tmp_path / "missing", lambda p: False, "x")
    leftovers = tmp_path / "killed"
    (leftovers / "checkpoints").mkdir(parents=True)
    (leftovers / ".lock").write_text("")
    (leftovers / "checkpoints" / ".last.pt.abc123.tmp").write_bytes(b"half")
    check_output_dir(leftovers, lambda p: False, "x")
    (leftovers / "checkpoints" / "last.pt.bak").write_bytes(b"mine")
    with pytest.raises(BadInput, match="not empty and not one of ours"):
        check_output_dir(leftovers, lambda p: False, "one of ours")
    check_output_dir(leftovers, lambda p: True, "one of ours")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInput, match="not a directory"):
        check_output_dir(tmp_path / "file", lambda p: True, "x")


def test_a_finished_training_folder_is_ours_and_a_killed_one_resumes(tmp_path):
    cfg = TrainConfig.from_dict(TINY, "test")
    train(cfg, tmp_path / "a", quiet=True)
    (tmp_path / "a" / "checkpoints" / "last.pt").unlink()  # a finished model without its checkpoint
    assert train_module.written_by_train(tmp_path / "a")
    train(cfg, tmp_path / "a", quiet=True)
    assert (tmp_path / "a" / "model.safetensors").is_file()


@pytest.mark.parametrize("key,value", [
    ("batch_size", 10**9), ("seq_len", 10**9), ("seed", -1), ("seed", 2**64), ("threads", 10**6),
    ("steps", True), ("lr", 1e300), ("weight_decay", 1e30), ("warmup_steps", -1), ("seq_len", "16"),
])
def test_training_config_values_out_of_range(runner, tmp_path, key, value):
    result = invoke(runner, tmp_path, {**TINY, key: value}, tmp_path / "o")
    assert_one_line_error(result, "cfg.json", repr(key))
    assert not (tmp_path / "o").exists()


def test_a_model_too_big_for_the_machine_is_refused_before_it_is_built(runner, tmp_path):
    raw = {**TINY, "model": {"architecture": "transformer",
                             "config": {"d_model": 65536, "n_layer": 1024, "n_head": 1, "block_size": 16}}}
    assert_one_line_error(invoke(runner, tmp_path, raw, tmp_path / "o"), "model.config", "GiB")


def test_a_diverging_training_stops_with_exit_1_and_publishes_nothing(runner, tmp_path):
    out = tmp_path / "o"
    result = invoke(runner, tmp_path, {**TINY, "lr": 1e4, "grad_clip": 0, "steps": 6}, out)
    assert_one_line_error(result, str(out), "no model is written", "step", exit_code=1)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints"]
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_the_publish_guard_refuses_non_finite_weights_and_numbers(tmp_path):
    model = torch.nn.Linear(2, 2)
    check_publishable(tmp_path, model, {"validation": 1.5, "kjv": None})
    with pytest.raises(RunFailed, match="kjv bits per byte is inf"):
        check_publishable(tmp_path, model, {"kjv": math.inf})
    with torch.no_grad():
        model.bias[0] = math.nan
    with pytest.raises(RunFailed, match="'bias' is not finite"):
        check_publishable(tmp_path, model, {})


@pytest.fixture
def finished(tmp_path):
    out = tmp_path / "o"
    train(TrainConfig.from_dict(TINY, "test"), out, quiet=True)
    return out


def resume(runner, tmp_path, out):
    return invoke(runner, tmp_path, TINY, out, "--resume")


def test_resuming_a_nan_model_publishes_nothing(runner, tmp_path, finished):
    ckpt = finished / "checkpoints" / "last.pt"
    state = torch.load(ckpt, weights_only=True)
    key = sorted(state["model"])[0]
    state["model"][key] = torch.full_like(state["model"][key], math.nan)
    torch.save(state, ckpt)
    before = snapshot(finished)
    assert_one_line_error(resume(runner, tmp_path, finished), "last.pt", key, "not finite")
    assert snapshot(finished) == before


@pytest.mark.parametrize("key,value", [
    ("step", -1), ("step", 2.0), ("bytes_seen", "many"), ("elapsed", math.nan), ("cpu_seconds", -5.0),
    ("tokenizer_json", 5), ("log", "[1, 2]"), ("log", '{"a": 1}'), ("config", "[]"), ("log", '[{"tokens": "x"}]'),
])
def test_resume_checkpoints_with_values_of_the_wrong_type(runner, tmp_path, finished, key, value):
    ckpt = finished / "checkpoints" / "last.pt"
    state = torch.load(ckpt, weights_only=True)
    state[key] = value
    torch.save(state, ckpt)
    result = resume(runner, tmp_path, finished)
    assert_one_line_error(result, "last.pt")
    assert key in result.output or "tokens" in result.output


def test_ctrl_c_exits_130(runner, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train", interrupted)
    result = invoke(runner, tmp_path, TINY, tmp_path / "o")
    assert result.exit_code == 130 and "--resume" in result.output and "Traceback" not in result.output
