"""Reliability, class 3: the CI gate fails closed. It passes only when every cell of the baseline was compared;
missing or failed baseline cells and non-finite numbers are exit 2 (not comparable) unless --allow-missing,
a failed candidate cell is exit 1, a non-finite threshold is exit 2."""

import json

import pytest

from support.run_fakes import write_fake_run

from robustbench_bytes import results as results_io
from robustbench_bytes.cli import cli

GRID = {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 2.3}, "antspeak": {"m": 3.0}}


@pytest.fixture
def base(tmp_path):
    write_fake_run(tmp_path / "base", GRID)
    return tmp_path / "base"


def gate(runner, *args):
    return runner.invoke(cli, ["compare", *map(str, args)])


def test_every_baseline_cell_failed_is_not_a_pass(runner, tmp_path):
    write_fake_run(tmp_path / "b", GRID, failed={("m", n) for n in GRID})
    write_fake_run(tmp_path / "c", GRID)
    result = gate(runner, tmp_path / "b", tmp_path / "c")
    assert result.exit_code == 2, result.output
    assert "not compared" in result.output and "baseline cell failed" in result.output


def test_a_failed_baseline_cell_is_a_gap_unless_allowed(runner, tmp_path):
    write_fake_run(tmp_path / "b", GRID, failed={("m", "antspeak")})
    write_fake_run(tmp_path / "c", GRID)
    assert gate(runner, tmp_path / "b", tmp_path / "c").exit_code == 2
    assert gate(runner, tmp_path / "b", tmp_path / "c", "--allow-missing").exit_code == 0


@pytest.mark.parametrize("candidate_grid", [
    {"clean": {"m": 2.0}},                                   # a run killed after its first cell
    {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 2.3}},          # another noise list
])
def test_a_candidate_missing_baseline_cells_fails(runner, base, tmp_path, candidate_grid):
    write_fake_run(tmp_path / "c", candidate_grid)
    result = gate(runner, base, tmp_path / "c")
    assert result.exit_code == 2, result.output
    assert "missing from the candidate" in result.output
    assert gate(runner, base, tmp_path / "c", "--allow-missing").exit_code == 0


def test_other_seeds_are_missing_cells(runner, tmp_path):
    write_fake_run(tmp_path / "b", GRID, seeds=(0, 1))
    write_fake_run(tmp_path / "c", GRID, seeds=(0,))
    assert gate(runner, tmp_path / "b", tmp_path / "c").exit_code == 2


def test_a_failed_candidate_cell_is_a_regression(runner, base, tmp_path):
    write_fake_run(tmp_path / "c", GRID, failed={("m", "drop:p=0.1")})
    result = gate(runner, base, tmp_path / "c")
    assert result.exit_code == 1 and "candidate cell failed" in result.output


@pytest.mark.parametrize("option,value", [("--max-bpb-increase", "nan"), ("--max-bpb-increase", "inf"),
                                          ("--max-bpb-increase", "-inf"), ("--max-ppl-increase-ratio", "nan"),
                                          ("--max-ppl-increase-ratio", "inf"), ("--confidence", "nan"),
                                          ("--confidence", "1.5")])
def test_a_non_finite_threshold_is_exit_2(runner, base, option, value):
    result = gate(runner, base, base, option, value)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output and option.lstrip("-").replace("-", "_") in lines[0]


@pytest.mark.parametrize("side", ["baseline", "candidate"])
def test_a_non_finite_document_nll_is_not_comparable(runner, base, tmp_path, side):
    write_fake_run(tmp_path / "c", GRID)
    run_dir = base if side == "baseline" else tmp_path / "c"
    cell = results_io.cell_path(run_dir, results_io.read_results(run_dir)[1].extra["cell"])
    record = json.loads(cell.read_text())
    record["documents"][2]["nll"] = None
    cell.write_text(json.dumps(record))
    result = gate(runner, base, tmp_path / "c")
    assert result.exit_code == 2, result.output
    assert "non-finite NLL" in result.output and "document 2" in result.output


def test_a_complete_comparison_still_passes(runner, base, tmp_path):
    write_fake_run(tmp_path / "c", GRID)
    assert gate(runner, base, tmp_path / "c").exit_code == 0
