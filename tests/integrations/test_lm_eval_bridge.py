"""The lm-evaluation-harness bridge, offline on a local JSON task (dataset_path: json): its log-likelihoods and
accuracy equal robustbench's own on the same items, clean and noised; `robustbench lm-eval` writes its results
into a run directory."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("lm_eval")

from click.testing import CliRunner  # noqa: E402

from robustbench_bytes.cli import cli  # noqa: E402
from robustbench_bytes.models import load_model  # noqa: E402
from robustbench_bytes.scoring.tasks import score_task  # noqa: E402
from robustbench_bytes.tasks import Task, TaskItem  # noqa: E402
from support.lm_eval_tasks import DOCS, lm_eval_model, write_local_task  # noqa: E402

pytestmark = pytest.mark.usefixtures("hf_offline")


@pytest.fixture(scope="module")
def local_task(tmp_path_factory):
    return write_local_task(tmp_path_factory.mktemp("lm_eval_task"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return lm_eval_model(tmp_path_factory.mktemp("m"))


def ours(model, noise, seed):
    # lm-eval's multiple_choice joins context and choice with its target_delimiter, a space
    task = Task("rb", tuple(TaskItem(d["context"], tuple(" " + c for c in d["choices"]), d["label"], str(i))
                            for i, d in enumerate(DOCS)))
    return score_task(model, task, noise, seed)


@pytest.mark.parametrize("noise", ["clean", "drop:p=0.3"])
def test_bridge_loglikelihoods_equal_robustbench(local_task, model_dir, noise):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from robustbench_bytes.integrations.lm_eval import RobustbenchLM

    model = load_model(model_dir)
    lm = RobustbenchLM(loaded=model, noise=noise, seed=3, batch_size=4)
    got = lm_eval.simple_evaluate(model=lm, tasks=["rb_local_mc"], task_manager=TaskManager(include_path=str(local_task), include_defaults=False),
                                  log_samples=True)
    samples = sorted(got["samples"]["rb_local_mc"], key=lambda s: s["doc_id"])
    expected = ours(model, noise, 3)
    assert len(samples) == len(expected.items)
    for sample, item in zip(samples, expected.items):
        lls = [float(r[0][0]) if isinstance(r[0], (list, tuple)) else float(r[0]) for r in sample["resps"]]
        assert lls == pytest.approx(item.loglikelihoods, abs=1e-4)
    assert got["results"]["rb_local_mc"]["acc,none"] == pytest.approx(expected.result.acc)


def test_model_args_string_and_registration(model_dir):
    from lm_eval.api.registry import get_model

    import robustbench_bytes.integrations.lm_eval  # noqa: F401  (importing it registers the model "robustbench")

    cls = get_model("robustbench")
    lm = cls.create_from_arg_string(f"model={model_dir},dtype=float32,noise=uppercase,seed=2",
                                    {"batch_size": "auto", "device": "cpu"})
    assert (lm.noise, lm.seed, lm.dtype, lm.batch_size) == ("uppercase:p=1.0", 2, "float32", 32)


def test_robustbench_lm_eval_command(local_task, model_dir, tmp_path):
    out = tmp_path / "run"
    args = ["lm-eval", "--model", model_dir, "--tasks", "rb_local_mc", "--include-path", str(local_task),
            "--only-include-path", "--noise", "antspeak", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "lm_eval.json").read_text())
    assert [(r["task"], r["noise"]) for r in summary] == [("rb_local_mc", "clean"), ("rb_local_mc", "antspeak")]
    assert all(0 <= r["acc"] <= 1 for r in summary)
    again = CliRunner().invoke(cli, args)  # reused, same numbers
    assert again.exit_code == 0 and json.loads((out / "lm_eval.json").read_text()) == summary
    bad = CliRunner().invoke(cli, ["lm-eval", "--model", model_dir, "--tasks", "no_such_task_xyz",
                                   "--include-path", str(local_task), "--only-include-path", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "no such lm-eval task" in bad.output
