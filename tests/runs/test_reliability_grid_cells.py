"""Reliability, issue 21: a stored cell is reused only when its values follow from its records and its labels are
those of its key and inputs (results.verified_problem); a noise whose code changes rescores its cells (the
noised text is fingerprinted); a folder a run left before its first manifest rename is resumed."""

from __future__ import annotations

import json
import math

import pytest

from robustbench_bytes import results as results_io
from robustbench_bytes import runs
from robustbench_bytes.results import tasks_io
from robustbench_bytes.data import load_corpus
from robustbench_bytes.errors import BadInput
from robustbench_bytes.runs.grid import check_out_dir
from robustbench_bytes.noise import NOISES, Noise, Param, register_noise
from robustbench_bytes.runs.tasks import TaskRunOptions, build_task_grid, execute_tasks
from robustbench_bytes.tasks import load_task_file
from support.run_fakes import make_mamba_checkpoint, write_tiny_corpus
from support.task_cells import write_task

NOISE = "drop:p=0.1"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid_cells")
    return {"model": str(make_mamba_checkpoint(root / "model", seed=3, head_scale=3.0)),
            "corpus": load_corpus(str(write_tiny_corpus(root / "corpus"))),
            "task": str(write_task(root / "task.jsonl", n=12))}


def score(files, out, noises=(NOISE,)):
    grid = runs.build_grid([files["model"]], list(noises), [0])
    outcome = runs.execute(grid, files["corpus"], runs.RunOptions(out=out, device="cpu", batch_size=4))
    return outcome.scored, outcome.skipped, [r.to_json() for r in outcome.results]


def edit_cell(out, cell: str, edit) -> None:
    path = results_io.cell_path(out, cell)
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))


def scale(name, factor):
    def edit(record):
        record["result"][name] *= factor
    return edit


def label(name, value):
    def edit(record):
        record["result"][name] = value
    return edit


def positions_moved(record):
    """Moves NLL between two buckets of the cell's positions: the totals still hold, the sum of documents not."""
    nll = record["result"]["positions"]["nll"]
    nll[0], nll[1] = nll[0] + 0.5, nll[1] - 0.5


def words_added(record):
    """One more clean word in a document, its sum and word perplexity made to agree: only the corpus says."""
    record["documents"][0]["clean_words"] += 1
    result = record["result"]
    result["clean_words"] += 1
    result["word_perplexity"] = math.exp(result["nll"] / result["clean_words"])


EDITS = {
    "bits_per_byte": scale("bits_per_byte", 0.5),  # the example: an edited derived value
    "word_perplexity": scale("word_perplexity", 0.9),
    "bits_per_clean_byte": scale("bits_per_clean_byte", 1.1),
    "undefined_claimed": lambda r: r["result"].update(word_perplexity=None, undefined={"word_perplexity": "x"}),
    "noise_label": label("noise", "drop:p=0.2"),  # an edited label
    "seed_label": label("seed", 7),
    "model_label": label("model_spec", "someone-else"),
    "corpus_label": label("corpus", "another-corpus"),
    "fingerprint_label": label("model_fingerprint", "0" * 64),
    "positions": positions_moved,
    "document_sizes": words_added,
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_stored_cell_that_does_not_follow_from_its_records_is_rescored(files, tmp_path, edit):
    out = tmp_path / "run"
    assert score(files, out)[:2] == (2, 0)
    first = score(files, out)
    assert first[:2] == (0, 2)
    edit_cell(out, first[2][1]["cell"], EDITS[edit])
    scored, reused, again = score(files, out)
    assert (scored, reused) == (1, 1)
    assert again[1]["bits_per_byte"] == first[2][1]["bits_per_byte"]
    assert (again[1]["noise"], again[1]["seed"], again[1]["corpus"]) == (NOISE, 0, files["corpus"].name)


def test_verified_problem_names_what_does_not_follow(files, tmp_path):
    """The one check the gate shares: an edited derived value is named, an untouched cell passes."""
    out = tmp_path / "run"
    _, _, cells = score(files, out)
    record = results_io.read_cell(out, cells[1]["cell"])
    assert results_io.verified_problem(record.result, record.documents, inputs=record.inputs,
                                       key=cells[1]["cell"]) is None
    edit_cell(out, cells[1]["cell"], scale("bits_per_byte", 2))
    record = results_io.read_cell(out, cells[1]["cell"])
    problem = results_io.verified_problem(record.result, record.documents, inputs=record.inputs)
    assert problem is not None and problem.startswith("bits_per_byte")


# ---------------------------------------------------------------- task cells

def run_tasks(files, out, noises=("uppercase",)):
    grid = build_task_grid([files["model"]], [files["task"]], list(noises), [0])
    outcome = execute_tasks(grid, {files["task"]: load_task_file(files["task"])},
                            TaskRunOptions(out=out, device="cpu", batch_size=4))
    return outcome.scored, outcome.skipped, outcome.results


def predictions_to_labels(record):
    """The issue's example: every prediction edited to the label, the accuracies made to agree."""
    for item in record["items"]:
        item["prediction"] = item["prediction_norm"] = item["label"]
    record["result"].update(acc=1.0, acc_norm=1.0)


def interval_widened(record):
    record["result"]["acc_low"] = max(0.0, record["result"]["acc_low"] - 0.1)


def item_label_moved(record):
    """Item 0's label moved to another choice that its log-likelihoods and predictions now favour, the accuracies
    made to agree: consistent in itself, but not the task's label."""
    item = record["items"][0]
    item["label"] = item["prediction"] = item["prediction_norm"] = (item["label"] + 1) % len(item["bytes"])
    item["loglikelihoods"][item["label"]] = 0.0  # log-likelihoods are negative: the largest, also per byte
    n = len(record["items"])
    record["result"].update(acc=sum(i["prediction"] == i["label"] for i in record["items"]) / n,
                            acc_norm=sum(i["prediction_norm"] == i["label"] for i in record["items"]) / n)


@pytest.mark.parametrize("edit", [predictions_to_labels, interval_widened, item_label_moved])
def test_a_stored_task_cell_whose_predictions_do_not_follow_is_rescored(files, tmp_path, edit):
    out = tmp_path / "run"
    scored, _, first = run_tasks(files, out)
    assert scored == 2
    path = tasks_io.task_cell_path(out, first[1].cell)
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    scored, reused, again = run_tasks(files, out)
    assert (scored, reused) == (1, 1)
    assert (again[1].acc, again[1].acc_norm, again[1].acc_low) == (first[1].acc, first[1].acc_norm, first[1].acc_low)


# ---------------------------------------------------------------- a noise whose code changes

SHIFT = {"by": 1}


def shift_letters(text, rng, p):
    """A stand-in for a plug-in noise whose author changes its code between runs (SHIFT)."""
    return "".join(chr(ord(c) + SHIFT["by"]) if c.isalpha() and rng.random() < p else c for c in text)


@pytest.fixture
def changing_noise():
    if "rb_test_shift" not in NOISES:
        register_noise(Noise("rb_test_shift", (Param("p", "probability", 0.5),), "letters shifted", shift_letters))
    SHIFT["by"] = 1
    yield "rb_test_shift:p=0.5"
    SHIFT["by"] = 1


def test_a_noise_whose_output_changes_rescores_its_cells(files, tmp_path, changing_noise):
    out = tmp_path / "run"
    assert score(files, out, [changing_noise])[:2] == (2, 0)
    assert score(files, out, [changing_noise])[:2] == (0, 2)
    SHIFT["by"] = 2  # the noise's code changed: other text, same spec
    scored, reused, _ = score(files, out, [changing_noise])
    assert (scored, reused) == (1, 1)  # the clean cell is the corpus itself and stays


def test_a_noise_whose_output_changes_rescores_its_task_cells(files, tmp_path, changing_noise):
    out = tmp_path / "run"
    assert run_tasks(files, out, [changing_noise])[:2] == (2, 0)
    assert run_tasks(files, out, [changing_noise])[:2] == (0, 2)
    SHIFT["by"] = 3
    assert run_tasks(files, out, [changing_noise])[:2] == (1, 1)


# ---------------------------------------------------------------- a kill before the first manifest rename

def test_a_folder_holding_only_the_lock_and_temporaries_is_resumed(files, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text("")
    (out / ".manifest.json.k2j3h4.tmp").write_text('{"format": "robust')  # the kill came mid-write
    check_out_dir(out)
    assert score(files, out)[:2] == (2, 0)
    assert not list(out.glob(".*.tmp")) and (out / "results.json").is_file()


@pytest.mark.parametrize("foreign", ["notes.txt", ".hidden", ".cache.tmp/data"])
def test_a_folder_with_anything_else_is_still_refused(tmp_path, foreign):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text("")
    (out / foreign).parent.mkdir(exist_ok=True)
    (out / foreign).write_text("mine")
    with pytest.raises(BadInput, match="not empty and not a run directory"):
        check_out_dir(out)


PLUGIN = '''
from robustbench_bytes.noise import Noise, Param


def mark(text, rng, p):
    return "".join(c + "{mark}" if rng.random() < p else c for c in text)


MARK = Noise("rb_mark", (Param("p", "probability", 0.3),), "a mark after some characters", mark)
'''


@pytest.mark.slow
def test_an_installed_plugin_noise_whose_code_changes_is_rescored(files, tmp_path):
    """The issue's example: a plug-in package's noise code changes between two runs of the same command."""
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    (site / "rb_mark-2.1.dist-info").mkdir(parents=True)
    (site / "rb_mark-2.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: rb-mark\nVersion: 2.1\n")
    (site / "rb_mark-2.1.dist-info" / "entry_points.txt").write_text(
        "[robustbench_bytes.noises]\nrb_mark = rb_mark:MARK\n")
    out = tmp_path / "run"

    def run(mark):
        (site / "rb_mark.py").write_text(PLUGIN.replace("{mark}", mark))
        env = dict(os.environ, PYTHONPATH=str(site), MPLCONFIGDIR=str(tmp_path / "mpl"))
        done = subprocess.run([sys.executable, "-m", "robustbench_bytes", "run", "--quiet", "--model", files["model"],
                               "--corpus", str(tmp_path / "corpus"), "--noise", "rb_mark", "--out", str(out)],
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip().splitlines()[-1]

    from support.run_fakes import write_tiny_corpus

    write_tiny_corpus(tmp_path / "corpus")
    assert run("*").startswith("2 scored, 0 reused")
    assert run("*").startswith("0 scored, 2 reused")
    assert run("#").startswith("1 scored, 1 reused")  # the noised cell, not the clean one
    plugins = json.loads((out / "manifest.json").read_text())["plugins"]
    assert {"group": "robustbench_bytes.noises", "name": "rb_mark", "value": "rb_mark:MARK",
            "distribution": "rb-mark", "version": "2.1"} in plugins
