"""The task grid: `robustbench run --task` resumes to the same numbers, reuses only cells whose inputs match,
`robustbench tasks` lists the built-ins, and the built-in tasks are deterministic and well formed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from robustbench_bytes.results import tasks_io
from robustbench_bytes.cli import cli
from robustbench_bytes.runs.tasks import TaskRunOptions, build_task_grid, execute_tasks
from robustbench_bytes.tasks import load_task_file
from robustbench_bytes.tasks.builtin import make_task
from support.task_cells import write_task
from support.run_fakes import make_mamba_checkpoint


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("taskrun")
    model = str(make_mamba_checkpoint(root / "m", seed=2, head_scale=3.0))
    return model, str(write_task(root / "t.jsonl"))


def numbers(run_dir):
    out = []
    for r in tasks_io.read_task_results(run_dir):
        record = {k: v for k, v in r.to_json().items() if k != "seconds"}
        out.append((record, [i.to_json() for i in tasks_io.read_task_items(run_dir, r)]))
    return out


def run(model, task_path, out, noises=("drop:p=0.3", "uppercase"), seeds=(0, 1), log=None):
    grid = build_task_grid([model], [task_path], list(noises), list(seeds))
    return execute_tasks(grid, {task_path: load_task_file(task_path)},
                         TaskRunOptions(out=out, device="cpu", batch_size=4, log=log))


def test_resumed_run_equals_uninterrupted(setup, tmp_path):
    model, task = setup
    whole = run(model, task, tmp_path / "whole")
    assert whole.scored == 5 and whole.failed == 0

    calls = []

    def interrupt_after_two(message):
        calls.append(message)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(model, task, tmp_path / "resumed", log=interrupt_after_two)
    again = run(model, task, tmp_path / "resumed")
    assert (again.skipped, again.scored) == (2, 3)
    assert numbers(tmp_path / "resumed") == numbers(tmp_path / "whole")


def test_a_rerun_removes_the_temporaries_a_killed_writer_left(setup, tmp_path):
    """tasks.json is written in the run directory itself, the task cells under tasks/: both places are cleared."""
    model, task = setup
    out = tmp_path / "run"
    run(model, task, out, noises=(), seeds=(0,))
    left = [out / ".tasks.json.k1ll3d.tmp", out / "tasks" / ".cell.json.k1ll3d.tmp"]
    for path in left:
        path.write_text("half a file")
    again = run(model, task, out, noises=(), seeds=(0,))
    assert again.skipped == 1 and not any(path.exists() for path in left)


def test_changed_inputs_or_broken_cells_are_rescored(setup, tmp_path):
    model, task = setup
    out = tmp_path / "run"
    run(model, task, out, noises=("drop:p=0.3",), seeds=(0,))
    clean = tasks_io.read_task_results(out)[0]
    path = tasks_io.task_cell_path(out, clean.cell)
    raw = json.loads(path.read_text())
    raw["result"]["acc"] = 1.0  # no longer what its items give
    path.write_text(json.dumps(raw))
    again = run(model, task, out, noises=("drop:p=0.3",), seeds=(0,))
    assert (again.scored, again.skipped) == (1, 1)
    assert tasks_io.read_task_results(out)[0].acc == clean.acc

    own = str(write_task(tmp_path / "t.jsonl"))
    assert run(model, own, out, noises=("drop:p=0.3",), seeds=(0,)).scored == 2
    assert run(model, own, out, noises=("drop:p=0.3",), seeds=(0,)).skipped == 2
    write_task(own, shift=1)  # other items, same file name
    assert run(model, own, out, noises=("drop:p=0.3",), seeds=(0,)).scored == 2


def test_cli_run_task_and_old_run_dirs(setup, tmp_path):
    model, task = setup
    out = tmp_path / "cli"
    result = CliRunner().invoke(cli, ["run", "--quiet", "--model", model, "--task", task, "--noise", "antspeak",
                                      "--out", str(out), "--limit-items", "4"])
    assert result.exit_code == 0, result.output
    stored = tasks_io.read_task_results(out)
    assert [(r.noise, r.items) for r in stored] == [("clean", 4), ("antspeak", 4)]
    for key in ("task", "noise", "seed", "model", "items", "acc", "acc_norm", "acc_low", "acc_norm_high"):
        assert key in stored[0].to_json()
    assert tasks_io.read_task_results(tmp_path) == []  # a folder without tasks.json has no task cells
    bad = CliRunner().invoke(cli, ["run", "--quiet", "--model", model, "--task", str(tmp_path / "none.jsonl"),
                                   "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "no such task" in bad.output and "Traceback" not in bad.output


def test_tasks_command_lists_the_builtins():
    result = CliRunner().invoke(cli, ["tasks"])
    assert result.exit_code == 0, result.output
    assert "kjv-verses" in result.output and "shakespeare-lines" in result.output
    assert "How the built-in tasks are made" in result.output


def test_builtin_rule_is_deterministic_and_well_formed():
    verses = [f"Word{b} " + " ".join(f"w{b}{k}x{j}" for j in range(7 + k % 5)) + "." for k in range(40)
              for b in range(2)]
    docs = ["BookA\n\n" + "\n".join(verses[0::2]) + "\n", "BookB\n\n" + "\n".join(verses[1::2]) + "\n"]
    task = make_task("kjv-verses", docs, ["BookA", "BookB"], items=30)
    assert task == make_task("kjv-verses", docs, ["BookA", "BookB"], items=30)
    assert len(task.items) == 30
    for item in task.items:
        assert len(item.choices) == len(set(item.choices)) == 4
        book = item.id.split("/")[0]
        true = item.choices[item.label]
        assert (item.context + true) in docs[0 if book == "BookA" else 1]
        assert all(f"w{'0' if book == 'BookA' else '1'}" in c for c in item.choices)  # same book only
    labels = {item.label for item in task.items}
    assert len(labels) > 1  # the true ending is not always in one place
