"""Every option of `robustbench run` either applies to the kind of cell a run scores (perplexity or task) or is
refused with one line naming it (exit 2): none is silently dropped."""

from __future__ import annotations

import json

import pytest

from robustbench_bytes.cli import cli
from robustbench_bytes.cli.run import ONLY_FOR, run
from support.task_cells import write_owl_task
from support.run_fakes import make_mamba_checkpoint, write_tiny_corpus

# options that every run uses, and how a test sees that a task run applied them (None: not observable per cell)
APPLIES_TO_BOTH = {"models", "noises", "suite", "seeds", "name", "out", "device", "batch_size", "dtype", "quiet",
                   "task_specs"}
EXAMPLE = {"corpus": "CORPUS", "limit_bytes": "100", "limit_documents": "1", "max_document_bytes": "50",
           "max_length": "8", "rank_timeout": "30", "noise_targets": "completion", "noise_choices": None,
           "limit_items": "2"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("options")
    task = write_owl_task(base / "task.jsonl")
    return {"model": str(make_mamba_checkpoint(base / "m")), "corpus": str(write_tiny_corpus(base / "c")),
            "task": str(task)}


def test_every_option_is_classified():
    names = {p.name for p in run.params}
    only = {n for kind in ONLY_FOR.values() for n in kind}
    assert names == APPLIES_TO_BOTH | only and not APPLIES_TO_BOTH & only
    assert set(EXAMPLE) == only


@pytest.mark.parametrize("kind, option", [(kind, option) for kind in ONLY_FOR for other, options in ONLY_FOR.items()
                                           if other != kind for option in options])
def test_an_option_of_the_other_kind_is_refused_by_name(runner, files, tmp_path, kind, option):
    flag = next(p.opts[0] for p in run.params if p.name == option)
    value = EXAMPLE[option]
    args = ["run", "--model", files["model"], "--out", str(tmp_path / "run"), "--quiet",
            *(["--task", files["task"]] if kind == "task" else ["--corpus", files["corpus"]]),
            flag, *([] if value is None else [files["corpus"] if value == "CORPUS" else value])]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert flag in result.output and "applies to" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", ["perplexity", "task"])
def test_options_that_apply_are_recorded(runner, files, tmp_path, kind):
    out = tmp_path / "run"
    args = ["run", "--model", files["model"], "--out", str(out), "--quiet", "--dtype", "float16",
            "--noise", "drop:p=0.5", "--seed", "3", "--batch-size", "2"]
    if kind == "task":
        args += ["--task", files["task"], "--limit-items", "3", "--noise-target", "completion"]
    else:
        args += ["--corpus", files["corpus"], "--limit-documents", "2", "--max-document-bytes", "40"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    cells = json.loads((out / ("tasks.json" if kind == "task" else "results.json")).read_text())
    assert {c["dtype"] for c in cells} == {"float16-autocast"}
    noised = [c for c in cells if c["noise"] != "clean"]
    assert [(c["noise"], c["seed"]) for c in noised] == [("drop:p=0.5", 3)]
    if kind == "task":
        assert {c["items"] for c in cells} == {3} and noised[0]["noise_target"] == "completion"
    else:
        assert {c["documents"] for c in cells} == {2} and max(c["clean_bytes"] for c in cells) <= 80
