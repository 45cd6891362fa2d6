"""One grid executor for every kind of cell (grid.py): the executor, not a command, decides that a kind which is not
split over ranks refuses a torchrun launch (one line, exit 2, nothing written); a task grid run through the executor
keeps reusing the cells it stored."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from support.cli_assertions import assert_one_line_error
from robustbench_bytes.runs import grid
from robustbench_bytes.cli import cli
from robustbench_bytes.errors import BadInput
from robustbench_bytes.runs import PerplexityCells
from robustbench_bytes.runs.tasks import TaskCells
from support.task_cells import write_owl_task
from support.run_fakes import make_mamba_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("kinds")
    task = write_owl_task(base / "task.jsonl")
    return {"model": str(make_mamba_checkpoint(base / "m")), "task": str(task)}


def test_only_perplexity_cells_are_split_over_ranks():
    assert PerplexityCells.shardable and not TaskCells.shardable


def test_a_kind_not_split_over_ranks_refuses_several_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(BadInput, match="WORLD_SIZE=2: task cells are not split over ranks"):
        grid.open_world(False, "cpu", "task cells")


def test_run_task_under_torchrun_is_one_line(files, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "--task", files["task"], "--model", files["model"], "--out", str(out),
                                      "--quiet"])
    assert_one_line_error(result, "WORLD_SIZE=2", "task cells", "one process")
    assert not out.exists()


def test_the_executor_refuses_a_distributed_world_for_a_kind_scored_whole(files, tmp_path):
    from robustbench_bytes.runs.distributed import World
    from robustbench_bytes.runs.tasks import TaskRunOptions, build_task_grid
    from robustbench_bytes.tasks import load_task_file

    cells = build_task_grid([files["model"]], [files["task"]], [], [0])
    options = TaskRunOptions(out=tmp_path / "run", world=World(rank=0, world_size=2))
    with pytest.raises(BadInput, match="task cells are not split over ranks"):
        grid.execute(TaskCells({files["task"]: load_task_file(files["task"])}, options), cells, options)
    assert not (tmp_path / "run").exists()


def test_score_is_a_grid_of_one_cell_that_writes_nothing(files, tmp_path, monkeypatch):
    """`score` goes through the executor without a run directory: the same numbers as a run's cell, no file."""
    from support.run_fakes import write_tiny_corpus

    corpus = str(write_tiny_corpus(tmp_path / "corpus", n_docs=3))
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    scored = CliRunner().invoke(cli, ["score", "--model", files["model"], "--corpus", corpus, "--noise",
                                      "drop:p=0.2", "--seed", "1", "--json", "--quiet"])
    assert scored.exit_code == 0, scored.output
    assert list(here.iterdir()) == []
    out = tmp_path / "run"
    ran = CliRunner().invoke(cli, ["run", "--model", files["model"], "--corpus", corpus, "--noise", "drop:p=0.2",
                                   "--seed", "1", "--out", str(out), "--quiet"])
    assert ran.exit_code == 0, ran.output
    cell = next(r for r in json.loads((out / "results.json").read_text()) if r["noise"] == "drop:p=0.2")
    one = json.loads(scored.stdout)
    assert (one["nll"], one["bytes"], one["tokens"], one["documents"]) == (cell["nll"], cell["bytes"], cell["tokens"],
                                                                          cell["documents"])
