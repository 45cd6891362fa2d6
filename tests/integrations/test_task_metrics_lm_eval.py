"""acc, acc_norm and acc_bytes exactly as lm-evaluation-harness computes them: its own
ConfigurableTask.process_results on the same log-likelihoods, for choices whose characters and UTF-8 bytes differ."""

from __future__ import annotations

import json
import random

import pytest

pytest.importorskip("lm_eval")

from robustbench_bytes.results.task_schema import predictions  # noqa: E402

CHOICES = ["naïve", "über alles", "x", "日本語の文", "café au lait", "ab", "ñ", "résumé déjà"]


pytestmark = pytest.mark.usefixtures("hf_offline")


def test_predictions_equal_lm_evals_process_results(tmp_path):
    from lm_eval.api.task import ConfigurableTask

    rng = random.Random(0)
    docs = []
    for i in range(60):
        choices = rng.sample(CHOICES, 4)
        docs.append({"context": f"item {i}", "choices": choices, "label": rng.randrange(4)})
    data = tmp_path / "mc.jsonl"
    data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    task = ConfigurableTask(config={
        "task": "rb_metrics", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "{{context}}",
        "doc_to_choice": "{{choices}}", "doc_to_target": "label",
        "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}, {"metric": "acc_bytes"}]})
    disagree = {"norm": 0, "bytes": 0}
    for doc in task.test_docs():
        lls = [-rng.uniform(1, 30) for _ in doc["choices"]]
        theirs = task.process_results(doc, [(ll, False) for ll in lls])
        pred, norm, per_byte = predictions(lls, [len(c.encode("utf-8")) for c in doc["choices"]],
                                           [len(c) for c in doc["choices"]])
        assert (pred == doc["label"], norm == doc["label"], per_byte == doc["label"]) == (
            bool(theirs["acc"]), bool(theirs["acc_norm"]), bool(theirs["acc_bytes"]))
        disagree["norm"] += norm != pred
        disagree["bytes"] += per_byte != norm
    # the choices make the three metrics differ often enough for the equality above to mean something
    assert disagree["norm"] > 5 and disagree["bytes"] > 5
