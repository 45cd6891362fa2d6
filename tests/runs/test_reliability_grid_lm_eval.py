"""Reliability, issue 21: `robustbench lm-eval` reuses an evaluation only when the task's files are unchanged (its
YAML, its data files, --include-path), rescores a truncated stored evaluation, answers a bad task list with one
line (exit 2), and writes a run directory its manifest marks (lm_eval/manifest.json, no empty results.json) without
git's complaints outside a repository."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("lm_eval")

from click.testing import CliRunner  # noqa: E402

from robustbench_bytes import results as results_io  # noqa: E402
from robustbench_bytes.cli import cli  # noqa: E402
from support.lm_eval_tasks import lm_eval_model, write_local_task  # noqa: E402

pytestmark = pytest.mark.usefixtures("hf_offline")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return lm_eval_model(tmp_path_factory.mktemp("m"))


@pytest.fixture
def task(tmp_path):
    return write_local_task(tmp_path / "task")


def lm_eval(model_dir, task, out, *extra, tasks="rb_local_mc"):
    return CliRunner().invoke(cli, ["lm-eval", "--model", model_dir, "--tasks", tasks, "--include-path", str(task),
                                    "--only-include-path", "--out", str(out), *extra])


def summary(out):
    return json.loads((out / "lm_eval.json").read_text())


def relabel(task):
    """The issue's example: the data's labels changed, the task's name and YAML not."""
    data = task / "data.jsonl"
    docs = [json.loads(line) for line in data.read_text().splitlines()]
    data.write_text("".join(json.dumps({**d, "label": (d["label"] + 1) % 3}) + "\n" for d in docs))


def reword(task):
    """The YAML changed: each context gets a prefix."""
    path = task / "rb_local_mc.yaml"
    path.write_text(path.read_text().replace('doc_to_text: "{{context}}"', 'doc_to_text: "Q: {{context}}"'))


@pytest.mark.parametrize("change", [relabel, reword])
def test_a_changed_task_is_evaluated_again(model_dir, task, tmp_path, change):
    out = tmp_path / "run"
    assert lm_eval(model_dir, task, out).exit_code == 0
    before = summary(out)
    change(task)
    result = lm_eval(model_dir, task, out)
    assert result.exit_code == 0, result.output
    after = summary(out)
    assert after[0]["cell"] != before[0]["cell"]  # not the stored evaluation
    fresh = tmp_path / "fresh"
    assert lm_eval(model_dir, task, fresh).exit_code == 0
    assert after == summary(fresh)  # the numbers of an evaluation from scratch


def test_a_truncated_stored_evaluation_is_evaluated_again(model_dir, task, tmp_path):
    out = tmp_path / "run"
    assert lm_eval(model_dir, task, out).exit_code == 0
    before = summary(out)
    stored = out / "lm_eval" / f"{before[0]['cell']}.json"
    stored.write_text(stored.read_text()[:40])
    result = lm_eval(model_dir, task, out)
    assert result.exit_code == 0, result.output
    assert summary(out) == before and json.loads(stored.read_text())["results"]


@pytest.mark.parametrize("tasks", [",", " , ,"])
def test_an_empty_task_list_is_one_line(model_dir, task, tmp_path, tasks):
    result = lm_eval(model_dir, task, tmp_path / "run", tasks=tasks)
    assert result.exit_code == 2 and "--tasks" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_an_lm_eval_run_directory_outside_git(model_dir, task, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)  # not a git repository: lm-eval's own `git describe` would complain
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    out = tmp_path / "run"
    result = lm_eval(model_dir, task, out, "--noise", "antspeak")
    assert result.exit_code == 0, result.output
    assert "not a git repository" not in capfd.readouterr().err + result.output
    assert not (out / "results.json").exists()  # no empty results.json to pass for a run directory
    manifest = json.loads((out / "lm_eval" / "manifest.json").read_text())
    assert manifest["format"] == "robustbench-lm-eval/1" and manifest["finished"]
    assert manifest["cells"] == [r["cell"] for r in summary(out)]
    assert results_io.is_run_dir(out) and results_io.read_results(out) == []
