"""The Triton kernels, run by Triton's CPU interpreter in a subprocess (TRITON_INTERPRET=1 must be set
before triton is imported), and the dispatch rules around them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robustbench_bytes import kernels
from robustbench_bytes.kernels import selective_scan, selective_state_update
from support.scan_inputs import scan_inputs

triton = pytest.importorskip("triton")


@pytest.fixture(scope="module")
def interpreter_results():
    env = dict(os.environ, TRITON_INTERPRET="1",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "support.triton_check", "cpu"],
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no results from the interpreter run (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc.returncode, lines


def test_interpreter_run_covers_every_case(interpreter_results):
    from support.triton_check import SCAN_CASES

    rc, results = interpreter_results
    names = {r["case"] for r in results}
    assert {case[0] for case in SCAN_CASES} <= names
    assert any(name.startswith("state-update") for name in names)
    assert {"resume-at-5", "nan-propagates"} <= names
    assert len(results) == 9
    assert rc == 0 or not all(r["ok"] for r in results)


@pytest.mark.parametrize("index", range(9))
def test_triton_case_matches_reference(interpreter_results, index):
    _, results = interpreter_results
    assert index < len(results), "the interpreter run returned fewer cases than expected"
    result = results[index]
    assert result["ok"], result


def test_triton_on_cpu_tensors_without_the_interpreter_says_why(monkeypatch):
    from robustbench_bytes.kernels import triton_scan

    monkeypatch.setattr(triton_scan, "INTERPRET", False)
    kw = scan_inputs(1, 4, 2, 5, seed=1)
    with pytest.raises(ValueError, match="needs CUDA tensors.*TRITON_INTERPRET=1"):
        selective_scan(**kw, backend="triton")
    state = torch.zeros(1, 4, 2)
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        selective_state_update(state, kw["u"][..., 0], kw["delta"][..., 0], kw["A"], kw["B"][..., 0],
                               kw["C"][..., 0], backend="triton")


def test_forward_only_triton_refuses_inputs_that_need_grad():
    kw = scan_inputs(1, 4, 2, 5, seed=2)
    kw["u"].requires_grad_()
    with pytest.raises(ValueError, match="forward only"):
        selective_scan(**kw, backend="triton")


def test_unknown_backend_is_named():
    kw = scan_inputs(1, 4, 2, 5, seed=3)
    with pytest.raises(ValueError, match="'cuda'.*expected one of"):
        selective_scan(**kw, backend="cuda")


def test_auto_resolves_by_device_and_grad():
    u = torch.zeros(1, 2, 3)
    assert kernels._resolve("auto", u) == "cpu"
    if torch.cuda.is_available():
        cu = u.cuda()
        assert kernels._resolve("auto", cu, (cu,)) == "triton"
        assert kernels._resolve("auto", cu, (cu.requires_grad_(),)) == "reference"
