"""The task parts of report and compare on synthetic run directories: accuracy tables with intervals, the
paired accuracy gate (--max-acc-drop) and its exit codes, and run directories without task cells."""

from __future__ import annotations

from click.testing import CliRunner

from robustbench_bytes.cli import cli
from support.task_cells import write_task_cells
from support.run_fakes import quiet_env, write_fake_run


def make_run(path, accuracy, seed=0):
    write_fake_run(path, {"m": {"clean": 1.0, "antspeak": 2.0}})
    write_task_cells(path, accuracy, seed=seed)
    return path


def test_report_has_accuracy_tables(tmp_path):
    run = make_run(tmp_path / "run", {"clean": 0.8, "antspeak": 0.4})
    result = CliRunner(env=quiet_env(tmp_path)).invoke(cli, ["report", str(run), "-o", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "rep" / "README.md").read_text()
    assert "Multiple-choice accuracy under noise" in text and "### t (200 items)" in text
    assert "`antspeak`" in text and "drop +0." in text
    assert (tmp_path / "rep" / "tasks.csv").is_file() and (tmp_path / "rep" / "plots" / "task_accuracy.png").is_file()


def test_run_without_tasks_reports_as_before(tmp_path):
    run = tmp_path / "old"
    write_fake_run(run, {"m": {"clean": 1.0, "antspeak": 2.0}})
    result = CliRunner(env=quiet_env(tmp_path)).invoke(cli, ["report", str(run), "-o", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "Multiple-choice" not in (tmp_path / "rep" / "README.md").read_text()
    same = CliRunner().invoke(cli, ["compare", str(run), str(run)])
    assert same.exit_code == 0 and "Multiple-choice" not in same.output


def test_accuracy_gate(tmp_path):
    base = make_run(tmp_path / "base", {"clean": 0.8, "antspeak": 0.6})
    same = make_run(tmp_path / "same", {"clean": 0.8, "antspeak": 0.6})
    worse = make_run(tmp_path / "worse", {"clean": 0.8, "antspeak": 0.3}, seed=1)

    def gate(*args):
        return CliRunner().invoke(cli, ["compare", *map(str, args)])

    assert gate(base, same).exit_code == 0
    result = gate(base, worse)
    assert result.exit_code == 1, result.output
    assert "regressed" in result.output and "accuracy down" in result.output
    assert gate(base, worse, "--max-acc-drop", "0.9").exit_code == 0  # the allowed drop is wider
    partial = make_run(tmp_path / "partial", {"clean": 0.8})
    assert gate(base, partial).exit_code == 2
    assert gate(base, partial, "--allow-missing").exit_code == 0
