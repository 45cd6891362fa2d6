"""The README's lm-evaluation-harness example runs as written and agrees with `robustbench run --task` on the
same task file: its YAML and its command line are taken from README.md, the data from a built-in task."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from click.testing import CliRunner  # noqa: E402

from robustbench_bytes.cli import cli  # noqa: E402
from robustbench_bytes.tasks.task import Task, write_task_file  # noqa: E402
from robustbench_bytes.tasks import resolve_task  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> tuple[str, list[str]]:
    """(the task YAML, the `robustbench lm-eval` arguments) of the README's local-task example."""
    block = re.search(r"```\n# my_tasks/my_mc.yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    yaml_text, command = block.split("\nrobustbench lm-eval ", 1)
    return yaml_text, shlex.split("lm-eval " + command.replace("\\\n", " "))


pytestmark = pytest.mark.usefixtures("hf_offline")


@pytest.mark.slow
def test_the_readme_lm_eval_example_agrees_with_run_task(tmp_path, monkeypatch):
    yaml_text, args = readme_example()
    task = resolve_task("kjv-verses")
    task = Task("my_mc", task.items[:24])
    assert all(c.startswith(" ") for item in task.items for c in item.choices)  # the README's task format
    data = tmp_path / "my_mc.jsonl"
    write_task_file(task, data)
    (tmp_path / "my_tasks").mkdir()
    (tmp_path / "my_tasks" / "my_mc.yaml").write_text(yaml_text.replace("/data/my_mc.jsonl", str(data)),
                                                      encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    bridge = CliRunner().invoke(cli, args)
    assert bridge.exit_code == 0, bridge.output
    model, suite = args[args.index("--model") + 1], args[args.index("--suite") + 1]
    ours = CliRunner().invoke(cli, ["run", "--task", str(data), "--model", model, "--suite", suite,
                                    "--out", "runs/task", "--quiet"])
    assert ours.exit_code == 0, ours.output
    theirs = {r["noise"]: r for r in json.loads(Path("runs/lm/lm_eval.json").read_text())}
    mine = {r["noise"]: r for r in json.loads(Path("runs/task/tasks.json").read_text())}
    assert set(theirs) == set(mine) and len(mine) == 6  # clean + the blt preset's five noises
    for noise, cell in mine.items():
        assert theirs[noise]["acc"] == pytest.approx(cell["acc"], abs=1e-12), noise
        assert theirs[noise]["acc_norm"] == pytest.approx(cell["acc_norm"], abs=1e-12), noise
