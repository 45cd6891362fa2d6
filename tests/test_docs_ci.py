"""docs/ci.md's workflow runs as written: every `run:` step of its YAML, in order, on a tiny checkpoint (the
install step as a pip dry run against this clone, so the test changes no environment)."""

from __future__ import annotations

import shutil

import pytest

from support.docs_ci import ROOT, bash, workflow_steps
from support.run_fakes import make_mamba_checkpoint


@pytest.mark.slow
def test_every_run_step_of_the_documented_workflow(tmp_path):
    steps = workflow_steps()
    assert list(steps) == ["Install robustbench-bytes", "Score the candidate checkpoint", "Gate against the baseline",
                           "Report"]
    (tmp_path / "robustbench-bytes").symlink_to(ROOT)  # where the workflow checks the toolkit out
    # a dry run (not PIP_DRY_RUN, which would also empty pip's isolated build environment)
    install = bash(steps["Install robustbench-bytes"].replace("pip install ", "pip install --dry-run "), tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]
    assert "Would install robustbench-bytes" in install.stdout

    make_mamba_checkpoint(tmp_path / "checkpoints" / "candidate")
    score = steps["Score the candidate checkpoint"]
    # the baseline run the repository would have committed: the same command on the last accepted checkpoint
    shutil.copytree(tmp_path / "checkpoints" / "candidate", tmp_path / "checkpoints" / "baseline")
    baseline = bash(score.replace("checkpoints/candidate", "checkpoints/baseline")
                    .replace("runs/candidate", "ci/baseline-run"), tmp_path)
    assert baseline.returncode == 0, baseline.stderr[-3000:]
    candidate = bash(score, tmp_path)
    assert candidate.returncode == 0, candidate.stderr[-3000:]

    gate = bash(steps["Gate against the baseline"], tmp_path)
    assert gate.returncode == 0, gate.stdout[-2000:] + gate.stderr[-2000:]
    report = bash(steps["Report"], tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "report" / "README.md").is_file()
