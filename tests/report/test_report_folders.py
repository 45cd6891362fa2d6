"""`robustbench report`'s folders: -o writes only into a missing or empty folder or one a report wrote (report.json,
or the README.md + report.html of a report from before it), never over a project's README.md; what it writes is
byte for byte the same when run twice on the same runs; and a folder with task cells only (tasks.json, as
`robustbench lm-eval` and `run --task` write it, with or without results.json) is a run directory it reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.run_fakes import write_fake_run
from support.task_cells import write_task_cells

from robustbench_bytes.results import tasks_io
from robustbench_bytes.cli import cli
from robustbench_bytes.report import REPORT_MANIFEST

BPCB = {"clean": {"a": 2.0, "b": 1.8}, "drop:p=0.1": {"a": 2.3, "b": 2.6}, "antspeak": {"a": 3.0, "b": 6.0}}


@pytest.fixture
def run(tmp_path):
    write_fake_run(tmp_path / "run", BPCB, n_docs=6)
    write_task_cells(tmp_path / "run", {"clean": 0.8, "antspeak": 0.5}, n=40)
    return tmp_path / "run"


def _report(runner, run, out, *more):
    return runner.invoke(cli, ["report", str(run), "-o", str(out), "--replicates", "20", *more])


def test_o_refuses_a_project_folder_and_leaves_its_readme(runner, run, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("# My project\n")
    result = _report(runner, run, project)
    assert result.exit_code == 2, result.output
    assert "not a report folder (no report.json)" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert (project / "README.md").read_text() == "# My project\n" and sorted(os.listdir(project)) == ["README.md"]


def test_o_refuses_a_run_directory_and_a_file(runner, run, tmp_path):
    assert _report(runner, run, run).exit_code == 2
    (tmp_path / "file").write_text("x")
    result = _report(runner, run, tmp_path / "file")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_o_takes_a_missing_an_empty_and_its_own_folder_and_drops_its_stale_files(runner, run, tmp_path):
    out = tmp_path / "rep"
    assert _report(runner, run, out).exit_code == 0
    listed = json.loads((out / REPORT_MANIFEST).read_text())["files"]
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert listed == on_disk  # the marker lists every file the report wrote, itself included
    (out / "plots" / "old_plot.png").write_bytes(b"x")  # as if a previous report had written it
    manifest = json.loads((out / REPORT_MANIFEST).read_text())
    manifest["files"].append("plots/old_plot.png")
    (out / REPORT_MANIFEST).write_text(json.dumps(manifest))
    (out / "notes.txt").write_text("mine")  # not listed: kept
    assert _report(runner, run, out, "--no-plots").exit_code == 0
    assert not (out / "plots" / "old_plot.png").exists() and (out / "notes.txt").read_text() == "mine"
    assert not (out / "plots" / "bits_rise.png").exists()  # listed before, not written this time
    (tmp_path / "empty").mkdir()
    assert _report(runner, run, tmp_path / "empty", "--no-plots").exit_code == 0


def test_o_takes_a_report_folder_from_before_report_json(runner, run, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "README.md").write_text("# Robustness report\n\nolder\n")
    (old / "report.html").write_text("<html></html>")
    assert _report(runner, run, old, "--no-plots").exit_code == 0
    assert (old / REPORT_MANIFEST).is_file()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_report_twice_writes_the_same_bytes(run, tmp_path):
    """Two processes (different hash seeds), the same runs and folder: every file identical, plots included."""
    snapshots = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, MPLCONFIGDIR=str(tmp_path / "mpl"))
        proc = subprocess.run([sys.executable, "-m", "robustbench_bytes", "report", str(run), "-o",
                               str(tmp_path / "rep"), "--replicates", "20"], env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        snapshots.append(_snapshot(tmp_path / "rep"))
    first, second = snapshots
    assert sorted(first) == sorted(second) and any(name.endswith(".svg") for name in first)
    assert [name for name in first if first[name] != second[name]] == []
    for name, data in first.items():
        if name.endswith(".svg"):
            assert b"<dc:date>" not in data and b"Matplotlib v" not in data, name
        if name.endswith(".png"):
            assert b"tEXtSoftware" not in data and b"Matplotlib" not in data, name
    readme = first["README.md"].decode()
    assert "git " not in readme.split("## ")[0]  # no git hash in the header: a resumed run records the current one


def test_a_folder_with_task_cells_only_is_a_run_directory(runner, tmp_path):
    """As `run --task` writes it into a new folder: tasks.json, its cells and tasks/manifest.json, no results.json."""
    out = tmp_path / "task-run"
    write_task_cells(out, {"clean": 0.8, "antspeak": 0.5})
    tasks_io.write_task_manifest(out, {})
    assert not (out / "results.json").exists()
    result = _report(runner, out, tmp_path / "rep")
    assert result.exit_code == 0, result.output
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert "### Accuracy on t" in readme and "## Multiple-choice accuracy under noise" in readme


def test_task_cells_without_item_records_report_their_accuracy_without_an_interval(runner, tmp_path):
    out = tmp_path / "summary-only"
    write_task_cells(out, {"clean": 0.8, "antspeak": 0.5})
    tasks_io.write_task_manifest(out, {})
    for cell_file in tasks_io.task_cell_path(out, "x").parent.glob("*.json"):
        if cell_file.name != "manifest.json":
            cell_file.unlink()
    cells = tasks_io.read_task_results(out)
    result = _report(runner, out, tmp_path / "rep", "--no-plots")
    assert result.exit_code == 0, result.output
    readme = (tmp_path / "rep" / "README.md").read_text()
    clean = next(c for c in cells if c.noise == "clean")
    assert f"| `clean` | {clean.acc:.3f} |" in readme


def test_a_folder_robustbench_lm_eval_wrote_is_reported(runner, tmp_path):
    """lm_eval.json lists lm-eval's accuracies per task, noise, target and seed (no item records: no interval);
    each evaluation's file holds the item count."""
    out = tmp_path / "lm-eval"
    (out / "lm_eval").mkdir(parents=True)
    (out / "lm_eval" / "manifest.json").write_text(json.dumps({"format": "robustbench-lm-eval/1"}))
    entries = [("clean", "context", 0.62, "c0"), ("antspeak", "context", 0.41, "c1"), ("antspeak", "both", 0.35, "c2")]
    summary = []
    for noise, target, acc, cell in entries:
        (out / "lm_eval" / f"{cell}.json").write_text(json.dumps({"n_samples": {"hellaswag": {"effective": 50}}}))
        summary.append({"model": "mambabyte-kjv-shakespeare", "task": "hellaswag", "noise": noise, "seed": 0,
                        "noise_target": target, "cell": cell, "acc": acc, "acc_stderr": 0.05, "acc_norm": acc + 0.01})
    (out / "lm_eval.json").write_text(json.dumps(summary))
    result = _report(runner, out, tmp_path / "rep", "--no-plots")
    assert result.exit_code == 0, result.output
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert "### hellaswag (50 items)" in readme and "### Accuracy on hellaswag" in readme
    assert "| `clean` | 0.620 |" in readme and "| `antspeak` | 0.410; drop +0.210 |" in readme
    assert "| `antspeak (both)` | 0.350; drop +0.270 |" in readme
    (out / "lm_eval.json").write_text("{}")
    bad = _report(runner, out, tmp_path / "rep2", "--no-plots")
    assert bad.exit_code == 2 and "lm_eval.json: expected a JSON list" in bad.output
