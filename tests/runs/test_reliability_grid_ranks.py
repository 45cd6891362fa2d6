"""Reliability, issue 21: the ranks of one run check that they run the same plan before any scoring (the grid,
the corpus, the checkpoints, the options, the version); ranks that disagree all stop with one line naming the
rank and the first field that differs (exit 2), instead of merging their shares into one wrong cell. A rank
number outside the world is one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from robustbench_bytes.cli import cli
from robustbench_bytes.runs.shares import plan_disagreement, plan_fingerprint
from support.distributed import free_port
from support.run_fakes import make_mamba_checkpoint, write_tiny_corpus


def plans(*bodies):
    return [{"fingerprint": plan_fingerprint(b), "plan": b} for b in bodies]


def test_the_same_plan_agrees_and_key_order_does_not_matter():
    a = {"noises": ["drop:p=0.1"], "corpus": {"sha256": "ab", "documents": 3}}
    b = {"corpus": {"documents": 3, "sha256": "ab"}, "noises": ["drop:p=0.1"]}
    assert plan_disagreement(plans(a, b, a)) is None


def test_a_disagreement_names_the_ranks_and_the_first_field():
    a = {"noises": ["drop:p=0.1"], "seeds": [0], "model_fingerprints": {"m": "1"}}
    other = {**a, "seeds": [1], "model_fingerprints": {"m": "2"}}
    line = plan_disagreement(plans(a, a, other, other))
    assert line.startswith("ranks 2, 3 run another run than rank 0: seeds differs")
    assert "rank 0: [0]; rank 2: [1]" in line and "\n" not in line


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("ranks")
    return {"model": str(make_mamba_checkpoint(root / "model")), "corpus": str(write_tiny_corpus(root / "corpus"))}


def two_ranks(files, out, rank0: list[str], rank1: list[str]):
    """Two ranks started by hand (no torchrun), each with its own command line, as on two nodes."""
    env = dict(os.environ, WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
               OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    base = [sys.executable, "-m", "robustbench_bytes", "run", "--quiet", "--model", files["model"], "--corpus",
            files["corpus"], "--out", str(out), "--rank-timeout", "60"]
    procs = [subprocess.Popen(base + extra, env=dict(env, RANK=str(r), LOCAL_RANK=str(r)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r, extra in enumerate([rank0, rank1])]
    try:
        return [p.communicate(timeout=240) + (p.returncode,) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.mark.slow
@pytest.mark.parametrize("rank0, rank1, field", [
    (["--noise", "drop:p=0.1"], ["--noise", "antspeak"], "noises"),  # the example
    (["--noise", "drop:p=0.1"], ["--noise", "drop:p=0.1", "--limit-documents", "2"], "corpus"),  # a stale copy
])
def test_ranks_that_run_different_plans_stop_before_scoring(files, tmp_path, rank0, rank1, field):
    out = tmp_path / "run"
    done = two_ranks(files, out, rank0, rank1)
    for rank, (stdout, stderr, code) in enumerate(done):
        assert code == 2, (rank, stderr[-2000:])
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in stderr, (rank, stderr)
        assert f"rank 1 runs another run than rank 0: {field} differs" in lines[0]
    assert not (out / "results.json").exists() and not list(out.glob("cells/*.json"))


@pytest.mark.parametrize("rank, expected", [("2", "RANK=2: expected an integer from 0 to 1"),
                                            ("-1", "RANK=-1: expected an integer from 0 to 1"),
                                            ("one", "RANK='one': expected an integer")])
def test_a_rank_outside_the_world_is_one_line(runner, files, tmp_path, monkeypatch, rank, expected):
    for name, value in {"WORLD_SIZE": "2", "RANK": rank, "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(cli, ["run", "--quiet", "--model", files["model"], "--corpus", files["corpus"],
                                 "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert expected in result.output and len(result.output.strip().splitlines()) == 1, result.output
