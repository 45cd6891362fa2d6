"""docs/ci.md's gate step writes the JSON and JUnit verdicts and its upload step keeps them (issue 25): the step as
written, on two run directories where the workflow puts them (test_docs_ci runs the whole workflow on real runs;
this checks what the files hold)."""

from __future__ import annotations

import json
import re

import pytest

from support.docs_ci import ROOT, bash, workflow_steps
from support.junit import check_junit
from support.run_fakes import write_fake_run

yaml = pytest.importorskip("yaml")

GRID = {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 2.3}, "antspeak": {"m": 3.0}}


def files_written(step: str) -> tuple[str, str]:
    json_path = re.search(r"--json (\S+)", step).group(1)
    junit_path = re.search(r"--junit (\S+)", step).group(1)
    return json_path, junit_path


def uploaded_paths() -> list[str]:
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    steps = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))["jobs"]["gate"]["steps"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload.get("if") == "always()"  # kept when the gate fails, which is when they matter
    return upload["with"]["path"].split()


@pytest.mark.parametrize("candidate_drop,exit_code", [(2.3, 0), (2.8, 1)])
def test_the_documented_gate_step_writes_and_uploads_both_files(tmp_path, candidate_drop, exit_code):
    step = workflow_steps()["Gate against the baseline"]
    json_path, junit_path = files_written(step)
    assert {json_path, junit_path} <= set(uploaded_paths())
    write_fake_run(tmp_path / "ci" / "baseline-run", GRID)
    write_fake_run(tmp_path / "runs" / "candidate", {**GRID, "drop:p=0.1": {"m": candidate_drop}})
    result = bash(step, tmp_path)
    assert result.returncode == exit_code, result.stdout[-2000:] + result.stderr[-2000:]
    doc = json.loads((tmp_path / json_path).read_text())
    assert doc["exit_code"] == exit_code and len(doc["pairs"]) == 3
    root = check_junit(tmp_path / junit_path)
    assert int(root.get("failures")) == (exit_code == 1)
