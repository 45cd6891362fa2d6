"""`robustbench train`: determinism, resumption, learning, the model directory, bad configs.

Tiny models on the KJV validation book (Esther, 30 KB) keep this to seconds."""

import json

import pytest
import torch
from safetensors.torch import load_file

from support.train_configs import ESTHER, tiny

from robustbench_bytes.cli import cli
from robustbench_bytes.training import lr_at, train

def weights(directory):
    return load_file(str(directory / "model.safetensors"))


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.mark.parametrize("architecture,tokenizer", [("transformer", "bpe"), ("mamba", "bytes")])
def test_same_seed_same_weights_and_resume_matches(tmp_path, architecture, tokenizer):
    cfg = tiny(architecture, tokenizer)
    train(cfg, tmp_path / "a", quiet=True)
    train(cfg, tmp_path / "b", quiet=True)
    assert_same_weights(tmp_path / "a", tmp_path / "b")

    # interrupted after 3 steps (checkpoint written), then resumed: the same weights as straight through
    partial = train(cfg, tmp_path / "c", quiet=True, stop_after=3)
    assert partial.steps == 3 and not (tmp_path / "c" / "model.safetensors").exists()
    resumed = train(cfg, tmp_path / "c", quiet=True, resume=True)
    assert resumed.steps == 6
    assert_same_weights(tmp_path / "a", tmp_path / "c")
    log = [json.loads(line) for line in (tmp_path / "c" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3, 4, 5, 6]

    other = tiny(architecture, tokenizer, seed=8)
    train(other, tmp_path / "d", quiet=True)
    wa, wd = weights(tmp_path / "a"), weights(tmp_path / "d")
    assert any(not torch.equal(wa[k], wd[k]) for k in wa)


def test_training_lowers_the_loss_and_writes_a_loadable_model(tmp_path):
    cfg = tiny(steps=40, eval_every=40, checkpoint_every=40, lr=0.02)
    result = train(cfg, tmp_path / "m", quiet=True)
    losses = [e["loss"] for e in result.log]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5
    out = tmp_path / "m"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "MODEL_CARD.md", "train_log.jsonl"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "transformer" and config["robustbench"]["level"] == "subword"
    assert config["robustbench"]["trained_steps"] == 40
    card = (out / "MODEL_CARD.md").read_text()
    assert f"{result.parameters:,}" in card and "validation bits per byte" in card

    from robustbench_bytes.data import load_corpus
    from robustbench_bytes.models import load_model
    from robustbench_bytes.scoring import score_corpus

    cell = score_corpus(load_model(str(out)), load_corpus("kjv:validation"), progress=False)
    assert cell.result.bits_per_byte == pytest.approx(result.val_bpb, rel=1e-4)


def test_lr_schedule_warms_up_then_decays_to_min():
    cfg = tiny(steps=100, warmup_steps=10, lr=1.0, min_lr=0.1)
    assert lr_at(cfg, 0) == pytest.approx(0.1)
    assert lr_at(cfg, 9) == pytest.approx(1.0)
    assert lr_at(cfg, 10) == pytest.approx(1.0)
    assert lr_at(cfg, 100) == pytest.approx(0.1)
    assert all(lr_at(cfg, s) >= lr_at(cfg, s + 1) for s in range(10, 100))


def test_existing_checkpoint_needs_resume(tmp_path, runner):
    cfg = tiny(steps=2)
    train(cfg, tmp_path / "x", quiet=True, stop_after=1)
    result = runner.invoke(cli, ["train", "--config", str(_write(tmp_path, tiny_raw(steps=2))),
                                      "--out", str(tmp_path / "x"), "--quiet"])
    assert result.exit_code == 2
    assert "--resume" in result.output


def tiny_raw(**overrides):
    cfg = tiny(**overrides)
    from dataclasses import asdict

    return asdict(cfg)


def _write(tmp_path, raw, name="cfg.json"):
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else json.dumps(raw))
    return path


@pytest.mark.parametrize("raw,expected", [
    ("{not json", "not valid JSON at line 1"),
    ({"model": {"architecture": "mamba"}}, "missing required key 'name'"),
    ({"name": "x", "model": {"architecture": "rnn"}}, "model.architecture"),
    ({"name": "x", "model": {"architecture": "mamba"}, "stepz": 3}, "unknown key 'stepz'"),
    ({"name": "x", "model": {"architecture": "mamba"}, "steps": 0}, "key 'steps' = 0"),
    ({"name": "x", "model": {"architecture": "mamba"}, "tokenizer": {"type": "bpe"}}, "tokenizer.vocab_size"),
    ({"name": "x", "model": {"architecture": "mamba", "config": {"n_layer": 1}}, "data": ESTHER},
     "missing required field 'd_model'"),
    ({"name": "x", "model": {"architecture": "mamba", "config": {"d_model": 8, "n_layer": 1}},
      "data": {"train": ["no-such-corpus"]}}, "no-such-corpus"),
])
def test_bad_config_is_one_line_exit_2(tmp_path, raw, expected, runner):
    result = runner.invoke(cli, ["train", "--config", str(_write(tmp_path, raw)), "--out",
                                      str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], result.output
    assert "Traceback" not in result.output


def test_missing_config_file(tmp_path, runner):
    result = runner.invoke(cli, ["train", "--config", str(tmp_path / "nope.json"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no such config file" in result.output


def test_training_threads_do_not_leak_into_the_caller():
    import numba
    import torch

    from robustbench_bytes.training import threads

    before = torch.get_num_threads(), numba.get_num_threads()
    target = 1 if before[0] != 1 else 2
    with threads(target):
        assert torch.get_num_threads() == target
    assert (torch.get_num_threads(), numba.get_num_threads()) == before
