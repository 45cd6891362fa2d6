"""The gate on task cells (issue 21): a run with only task cells is gated on them (identical runs pass, a real
accuracy drop fails, a missing task cell is a gap), a folder with nothing to compare is exit 2; and one pairing key
for both kinds of cell (issue 22): `--model ckpt/new/` and `--model ckpt/new` are one model for perplexity and task
cells alike."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from support.gate_fakes import write_task_run
from support.run_fakes import write_fake_run

from robustbench_bytes import results as results_io
from robustbench_bytes.cli import cli
from robustbench_bytes.gate import Thresholds, compare_runs, model_key
from robustbench_bytes.gate.tasks import compare_task_runs


def gate(runner, *args):
    return runner.invoke(cli, ["compare", *map(str, args)])


def test_identical_task_only_runs_pass(runner, tmp_path):
    base = write_task_run(tmp_path / "b", {"clean": 0.8, "antspeak": 0.6})
    same = write_task_run(tmp_path / "s", {"clean": 0.8, "antspeak": 0.6})
    assert json.loads((base / results_io.RESULTS_FILE).read_text()) == []  # no perplexity cell at all
    result = gate(runner, base, same)
    assert result.exit_code == 0, result.output  # before: exit 2, "holds no cells"
    assert "Multiple-choice accuracy" in result.output and "PASS" in result.output
    assert gate(runner, base, base).exit_code == 0


def test_a_real_accuracy_drop_in_a_task_only_run_fails(runner, tmp_path):
    base = write_task_run(tmp_path / "b", {"clean": 0.8, "antspeak": 0.6})
    worse = write_task_run(tmp_path / "w", {"clean": 0.8, "antspeak": 0.3}, seed=1)
    result = gate(runner, base, worse)
    assert result.exit_code == 1, result.output  # before: exit 2, "holds no cells"
    assert "accuracy down" in result.output
    antspeak = next(line for line in result.output.splitlines() if "`antspeak`" in line)
    assert "regressed" in antspeak
    assert gate(runner, base, worse, "--max-acc-drop", "0.9").exit_code == 0


def test_a_task_cell_missing_from_a_task_only_candidate_is_a_gap(runner, tmp_path):
    base = write_task_run(tmp_path / "b", {"clean": 0.8, "antspeak": 0.6})
    partial = write_task_run(tmp_path / "p", {"clean": 0.8})
    result = gate(runner, base, partial)
    assert result.exit_code == 2, result.output
    assert "missing from the candidate" in result.output
    assert gate(runner, base, partial, "--allow-missing").exit_code == 0


def test_a_run_with_nothing_to_compare_is_exit_2(runner, tmp_path):
    empty = tmp_path / "empty"
    results_io.write_results(empty, [])
    tasks = write_task_run(tmp_path / "t", {"clean": 0.8})
    result = gate(runner, empty, tasks)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "holds no cells" in lines[0] and str(empty) in lines[0]


def test_a_candidate_without_the_baselines_perplexity_cells_is_exit_2(runner, tmp_path):
    base = tmp_path / "b"
    write_fake_run(base, {"clean": {"m": 2.0}, "antspeak": {"m": 3.0}})
    write_task_run(base, {"clean": 0.8})
    tasks_only = write_task_run(tmp_path / "t", {"clean": 0.8})
    result = gate(runner, base, tasks_only)
    assert result.exit_code == 2, result.output
    assert "holds no perplexity cells" in result.output


# ------------------------------------------------------------------ one pairing key (issue 22)


@pytest.mark.parametrize("a,b", [("ckpt/new/", "ckpt/new"), ("./ckpt/new", "ckpt/new"), ("ckpt//new", "ckpt/new"),
                                 ("hf:models/x/", "hf:models/x")])
def test_model_key_normalises_the_path(a, b):
    def result(name):
        return SimpleNamespace(model=name, model_spec=name)

    assert model_key(result(a)) == model_key(result(b))


def test_model_key_keeps_different_models_apart():
    def result(name):
        return SimpleNamespace(model=name, model_spec=name)

    keys = {model_key(result(name)) for name in ("ckpt/new", "ckpt/old", "new", "hf:ckpt/new", "mambabyte-tiny")}
    assert len(keys) == 5


def two_model_run(path, models, accuracy_b=0.6, task_seed=0):
    """Perplexity and task cells of two models (so cells are paired by model)."""
    write_fake_run(path, {"clean": {models[0]: 2.0, models[1]: 2.5}, "antspeak": {models[0]: 3.0, models[1]: 3.5}})
    write_task_run(path, {"clean": 0.8, "antspeak": accuracy_b}, models=models, seed=task_seed)
    return path


def test_a_trailing_slash_pairs_both_kinds_of_cell(runner, tmp_path):
    base = two_model_run(tmp_path / "b", ("ckpt/new/", "ckpt/old"))
    cand = two_model_run(tmp_path / "c", ("ckpt/new", "ckpt/old/"))
    th = Thresholds()
    cells, tasks = compare_runs(base, cand, th), compare_task_runs(base, cand, th)
    assert cells.by_model and len(cells.pairs) == 4 and not cells.only_baseline  # before: every cell paired...
    assert len(tasks.pairs) == 4 and not tasks.only_baseline  # ...but no task cell (paired by the spec as typed)
    assert gate(runner, base, cand).exit_code == 0


def test_a_task_drop_of_one_model_is_found_across_spellings(runner, tmp_path):
    base = two_model_run(tmp_path / "b", ("ckpt/new/", "ckpt/old"))
    cand = tmp_path / "c"
    write_fake_run(cand, {"clean": {"ckpt/new": 2.0, "ckpt/old": 2.5}, "antspeak": {"ckpt/new": 3.0, "ckpt/old": 3.5}})
    write_task_run(cand, {"clean": 0.8, "antspeak": 0.2}, models=("ckpt/new",), seed=1)  # new drops
    write_task_run(tmp_path / "old", {"clean": 0.8, "antspeak": 0.6}, models=("ckpt/old",))
    # the candidate's task cells: new's (dropped) and old's (unchanged), in one tasks.json
    listing = json.loads((cand / "tasks.json").read_text()) + json.loads((tmp_path / "old" / "tasks.json").read_text())
    for cell in (tmp_path / "old" / "tasks").glob("*.json"):
        (cand / "tasks" / cell.name).write_text(cell.read_text())
    (cand / "tasks.json").write_text(json.dumps(listing))
    tasks = compare_task_runs(base, cand, Thresholds())
    verdicts = {(p.model, p.noise): p.verdict for p in tasks.pairs}
    assert verdicts[("ckpt/new/", "antspeak")] == "regressed" and verdicts[("ckpt/old", "antspeak")] != "regressed"
    assert not tasks.only_baseline
    assert gate(runner, base, cand).exit_code == 1


def test_the_gated_accuracy_is_read_from_the_metric_table(runner, tmp_path, monkeypatch):
    """The task gate thresholds on the table's entry GATED (acc): another entry renames its check and columns,
    and one whose predictions the item records lack (these fakes have no acc_bytes) is a gap, not a pass."""
    from robustbench_bytes.gate import tasks as gate_tasks
    from robustbench_bytes.results import metrics

    assert gate_tasks.GATED is metrics.ACCURACIES["acc"]
    base = write_task_run(tmp_path / "b", {"clean": 0.8, "antspeak": 0.6})
    worse = write_task_run(tmp_path / "w", {"clean": 0.8, "antspeak": 0.3}, seed=1)
    monkeypatch.setattr(gate_tasks, "GATED", metrics.ACCURACIES["acc_norm"])
    tasks = compare_task_runs(base, worse, Thresholds())
    assert [r["checks"][0]["metric"] for r in tasks.records()] == ["acc_norm", "acc_norm"]
    assert "| acc_norm (base → cand) | Δacc_norm [95%] |" in tasks.markdown() and tasks.exit_code == 1
    monkeypatch.setattr(gate_tasks, "GATED", metrics.ACCURACIES["acc_bytes"])
    tasks = compare_task_runs(base, worse, Thresholds())
    assert {p.verdict for p in tasks.pairs} == {"not compared"} and tasks.exit_code == 2
    assert tasks.pairs[0].reasons == ["item records without acc_bytes predictions"]
