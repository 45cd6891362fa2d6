"""The gate trusts nothing a run directory stores beyond what its records give (issue 21): a listed cell whose
derived values, labels or (task cells) predictions do not follow from its per-document or per-item records is
refused, and so is a listing with a field of the wrong type; each is exit 2 with one line naming the run
directory, the cell or entry, and the field."""

from __future__ import annotations

import json

import pytest

from support.gate_fakes import cell_file, edit_json, edit_listing, listed, write_task_run
from support.run_fakes import write_fake_run

from robustbench_bytes.cli import cli
from robustbench_bytes.results.task_schema import TASKS_DIR, TASKS_FILE

GRID = {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 2.3}, "antspeak": {"m": 3.0}}


def gate(runner, *args):
    return runner.invoke(cli, ["compare", *map(str, args)])


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture
def runs(tmp_path):
    write_fake_run(tmp_path / "base", GRID)
    write_fake_run(tmp_path / "cand", GRID)
    return tmp_path / "base", tmp_path / "cand"


def test_the_untouched_runs_pass(runner, runs):
    assert gate(runner, *runs).exit_code == 0


@pytest.mark.parametrize("field,value", [
    ("bits_per_clean_byte", 0.5),   # the value the table shows, edited
    ("bits_per_byte", 0.5),
    ("word_perplexity", 3.0),
    ("byte_perplexity", 3.0),
])
@pytest.mark.parametrize("side", ["baseline", "candidate"])
def test_an_edited_derived_value_is_refused(runner, runs, side, field, value):
    run_dir = runs[0] if side == "baseline" else runs[1]
    entry = edit_listing(run_dir, 1, **{field: value})
    result = gate(runner, *runs)
    assert result.exit_code == 2, result.output
    line = one_line(result)
    assert f"{side} {run_dir}" in line and entry["cell"] in line and field in line


def test_a_derived_value_edited_in_the_cell_file_as_well_is_refused(runner, runs):
    # the listing and the cell file agree, but neither follows from the documents
    entry = edit_listing(runs[1], 2, bits_per_clean_byte=1.0)
    edit_json(cell_file(runs[1], entry), lambda raw: raw["result"].update(bits_per_clean_byte=1.0))
    line = one_line(gate(runner, *runs))
    assert entry["cell"] in line and "bits_per_clean_byte" in line


@pytest.mark.parametrize("field,value", [("noise", "swap:p=0.1"), ("seed", 3), ("model", "other"),
                                         ("corpus_sha256", "c0ffef")])
def test_an_edited_label_is_refused(runner, runs, field, value):
    entry = edit_listing(runs[1], 1, **{field: value})
    result = gate(runner, *runs)
    assert result.exit_code == 2, result.output
    line = one_line(result)
    assert str(runs[1]) in line and entry["cell"] in line and field in line


def test_a_label_edited_in_both_the_listing_and_the_cell_file_is_refused(runner, runs):
    # consistent everywhere but in the cell's name, which is a digest of (model, noise, seed)
    entry = edit_listing(runs[1], 1, noise="swap:p=0.1")
    edit_json(cell_file(runs[1], entry), lambda raw: raw["result"].update(noise="swap:p=0.1"))
    edit_listing(runs[0], 1, noise="swap:p=0.1")
    edit_json(cell_file(runs[0], entry), lambda raw: raw["result"].update(noise="swap:p=0.1"))
    result = gate(runner, *runs)
    assert result.exit_code == 2, result.output
    assert entry["cell"] in one_line(result)


# ------------------------------------------------------------------ task cells


@pytest.fixture
def task_runs(tmp_path):
    return (write_task_run(tmp_path / "tb", {"clean": 0.8, "antspeak": 0.6}),
            write_task_run(tmp_path / "tc", {"clean": 0.8, "antspeak": 0.3}, seed=1))


def predictions_set_to_labels(run_dir, index: int) -> str:
    """The issue's example: a task cell whose predictions were edited to the labels (and its accuracies and
    intervals to match, so that only the log-likelihoods tell)."""
    from robustbench_bytes.results.task_schema import ItemRecord
    from robustbench_bytes.results.resampled import accuracies

    entry = listed(run_dir, TASKS_FILE)[index]
    path = cell_file(run_dir, entry, TASKS_DIR)

    def edit(raw):
        for item in raw["items"]:
            item["prediction"] = item["prediction_norm"] = item["label"]
        items = [ItemRecord.from_json(item, "item") for item in raw["items"]]
        raw["result"].update(accuracies(items, confidence=0.95))
        entry.update(raw["result"])

    edit_json(path, edit)
    edit_listing(run_dir, index, TASKS_FILE, **entry)
    return entry["cell"]


def test_a_real_accuracy_drop_fails_the_gate(runner, task_runs):
    assert gate(runner, *task_runs).exit_code == 1


def test_task_predictions_edited_to_the_labels_are_refused(runner, task_runs):
    cell = predictions_set_to_labels(task_runs[1], 1)
    result = gate(runner, *task_runs)
    assert result.exit_code == 2, result.output  # before: exit 0, the drop hidden by the edit
    line = one_line(result)
    assert f"candidate {task_runs[1]}" in line and cell in line and "prediction" in line


def test_an_edited_task_accuracy_or_label_is_refused(runner, task_runs):
    before = edit_listing(task_runs[0], 1, TASKS_FILE, acc=0.3)
    line = one_line(gate(runner, *task_runs))
    assert f"baseline {task_runs[0]}" in line and before["cell"] in line and "acc" in line
    edit_listing(task_runs[0], 1, TASKS_FILE, **{**before, "noise": "uppercase"})
    result = gate(runner, *task_runs)
    assert result.exit_code == 2 and "noise" in one_line(result)


# ------------------------------------------------------------------ wrong types and sizes


@pytest.mark.parametrize("field,value", [
    ("nll", "5"), ("bits_per_clean_byte", [2.0]), ("word_perplexity", {"v": 1}), ("model", ["m"]),
    ("model_spec", ["m"]), ("corpus_sha256", [1]), ("documents", "12"), ("device", {"cpu": 1}),
    ("nll", 10 ** 400), ("clean_bytes", 10 ** 400), ("seed", True), ("cell", 5),
])
@pytest.mark.parametrize("side", [0, 1])
def test_a_listed_field_of_the_wrong_type_is_exit_2(runner, runs, side, field, value):
    edit_listing(runs[side], 1, **{field: value})
    result = gate(runner, *runs)
    assert result.exit_code == 2, result.output  # before: exit 1 with a traceback, or exit 0
    line = one_line(result)
    assert str(runs[side]) in line and field in line


@pytest.mark.parametrize("field,value", [("acc", "0.8"), ("model", ["m"]), ("items", [200]), ("task_spec", ["t"])])
def test_a_task_listing_field_of_the_wrong_type_is_exit_2(runner, task_runs, field, value):
    edit_listing(task_runs[1], 0, TASKS_FILE, **{field: value})
    result = gate(runner, *task_runs)
    assert result.exit_code == 2, result.output
    line = one_line(result)
    assert f"candidate {task_runs[1]}" in line and TASKS_FILE in line and field in line


@pytest.mark.parametrize("content", ['{"not": "a list"}', "[[1, 2]]", '[{"noise": "clean"}]', "[1e999999]"])
def test_a_listing_of_the_wrong_shape_is_exit_2(runner, runs, content):
    (runs[1] / "results.json").write_text(content)
    result = gate(runner, *runs)
    assert result.exit_code == 2, result.output
    assert "results.json" in one_line(result)


@pytest.mark.parametrize("replicates", ["1000000000", "100001", "1e9", "9"])
def test_replicates_are_bounded(runner, runs, replicates):
    result = gate(runner, *runs, "--replicates", replicates)
    assert result.exit_code == 2, result.output
    assert "replicates" in one_line(result)


def test_the_largest_replicates_allowed_is_accepted(runner, runs):
    from robustbench_bytes.stats import MAX_REPLICATES

    assert gate(runner, *runs, "--replicates", MAX_REPLICATES).exit_code == 0


def test_the_thresholds_object_bounds_replicates_too():
    from robustbench_bytes.gate import Thresholds
    from robustbench_bytes.errors import BadInput
    from robustbench_bytes.stats import MAX_REPLICATES

    for bad in (MAX_REPLICATES + 1, 10 ** 9, 2.5, True):
        with pytest.raises(BadInput, match="replicates"):
            Thresholds(replicates=bad)
    json.dumps(Thresholds().as_json())  # plain JSON


@pytest.mark.parametrize("edit", [
    lambda raw: raw["documents"][3].pop("nll"),          # a missing key
    lambda raw: raw["documents"][3].update(bytes=[1]),   # a list for a number
    lambda raw: raw.update(documents={"0": {}}),         # an object for a list
])
def test_a_cell_file_of_the_wrong_shape_is_exit_2(runner, runs, edit):
    entry = listed(runs[1])[1]
    edit_json(cell_file(runs[1], entry), edit)
    result = gate(runner, *runs)
    assert result.exit_code == 2, result.output
    assert entry["cell"] in one_line(result)
