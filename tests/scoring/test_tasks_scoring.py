"""Multiple-choice scoring: continuation log-likelihoods against a plain full-sequence forward, acc / acc_norm
against a hand-computed example, the task file format (ours and HellaSwag's), per-item noise streams."""

from __future__ import annotations

import json
import math

import pytest
import torch

from robustbench_bytes import noise as noise_lib
from robustbench_bytes.errors import BadInput
from robustbench_bytes.models import load_model
from robustbench_bytes.models.checkpoint import save_pretrained
from robustbench_bytes.models.transformer import GPT, GPTConfig
from robustbench_bytes.results.task_schema import ItemRecord
from robustbench_bytes.results.task_schema import accuracy_columns
from robustbench_bytes.results.resampled import accuracies
from robustbench_bytes.scoring.tasks import (continuation_loglikelihoods, encode_pair, item_records, noised_items,
                                            score_task)
from robustbench_bytes.tasks import Task, TaskItem, load_task_file
from support.run_fakes import make_mamba_checkpoint

PAIRS = [("In the beginning God", " created the heaven"), ("In the beginning God", " made"),
         ("And the earth was ", "without form"), ("", "Light."), ("And God said", ", Let there be light"),
         ("And the earth was ", "void")]


@pytest.fixture(scope="module")
def mamba(tmp_path_factory):
    return load_model(str(make_mamba_checkpoint(tmp_path_factory.mktemp("mamba"), seed=3, head_scale=4.0)))


@pytest.fixture(scope="module")
def gpt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt")
    torch.manual_seed(1)
    config = GPTConfig(vocab_size=256, block_size=24, n_layer=1, n_head=2, d_model=16)
    save_pretrained(GPT(config), folder, config.to_dict())
    return load_model(str(folder))


def reference(model, context: str, continuation: str) -> float:
    """One forward over prefix + context + continuation (the last max_length + 1 tokens for a window)."""
    ctx, cont = encode_pair(model.tokenizer, context, continuation)
    seq = list(model.tokenizer.prefix_ids) + ctx + cont
    if model.max_length:
        seq = seq[-(model.max_length + 1):]
    ids = torch.tensor([seq[:-1]])
    with torch.inference_mode():
        logits = model.stream(ids, None)[0] if model.streaming else model.window(ids, torch.ones_like(ids))
    logprobs = torch.log_softmax(logits[0].double(), dim=-1)
    targets = seq[1:]
    return sum(float(logprobs[p, targets[p]]) for p in range(len(targets) - len(cont), len(targets)))


@pytest.mark.parametrize("which", ["mamba", "gpt"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_loglikelihoods_equal_a_full_forward(which, batch_size, request):
    model = request.getfixturevalue(which)
    got = continuation_loglikelihoods(model, PAIRS, batch_size=batch_size)
    for (context, continuation), score in zip(PAIRS, got):
        assert score.loglikelihood == pytest.approx(reference(model, context, continuation), abs=1e-4)
        assert score.tokens == len(encode_pair(model.tokenizer, context, continuation)[1])


def test_long_context_is_cut_from_the_left_for_a_window(gpt):
    context = "word " * 40  # longer than the 24-token window
    score, = continuation_loglikelihoods(gpt, [(context, "end")])
    assert score.loglikelihood == pytest.approx(reference(gpt, context, "end"), abs=1e-4)


def test_trailing_space_of_the_context_moves_to_the_continuation(mamba):
    assert encode_pair(mamba.tokenizer, "a b ", "c") == (list(b"a b"), list(b" c"))
    with pytest.raises(BadInput, match="empty"):
        continuation_loglikelihoods(mamba, [("context", "")])


def test_acc_acc_norm_and_acc_bytes_by_hand():
    # item 0: choices "ab" (2 chars, 2 bytes) and "éé" (2 chars, 4 bytes); sums -3, -2.2 -> 1; per char -1.5, -1.1
    # -> 1; per byte -1.5, -0.55 -> 1.  item 1: "x" (1, 1) and "ñññ" (3, 6): sums -2, -3.3 -> 0; per char -2, -1.1
    # -> 1; per byte -2, -0.55 -> 1.  item 2: "zz" (2, 2) and "ü" (1, 2): sums -4, -2.1 -> 1; per char -2, -2.1 -> 0;
    # per byte -2, -1.05 -> 1.  labels 1, 0, 0.
    choices = [["ab", "éé"], ["x", "ñññ"], ["zz", "ü"]]
    task = Task("hand", tuple(TaskItem(c, tuple(row), label) for c, row, label in zip("abc", choices, (1, 0, 0))))
    records = item_records([[-3, -2.2], [-2, -3.3], [-4, -2.1]], choices, [[1, 1]] * 3, task)
    assert [(r.prediction, r.prediction_norm, r.prediction_bytes) for r in records] == [(1, 1, 1), (0, 1, 1),
                                                                                         (1, 0, 1)]
    assert [r.chars for r in records] == [[2, 2], [1, 3], [2, 1]] and records[1].bytes == [1, 6]
    got = accuracies(records, replicates=200)
    assert got["acc"] == pytest.approx(2 / 3) and got["acc_norm"] == pytest.approx(2 / 3)
    assert got["acc_bytes"] == pytest.approx(1 / 3)
    assert 0 <= got["acc_low"] <= got["acc"] <= got["acc_high"] <= 1
    assert ItemRecord.from_json(json.loads(json.dumps(records[0].to_json())), "x") == records[0]


def test_version_1_records_keep_their_per_byte_acc_norm():
    raw = {"index": 0, "label": 1, "loglikelihoods": [-3, -4], "bytes": [1, 8], "tokens": [1, 1], "prediction": 0,
           "prediction_norm": 1}
    record = ItemRecord.from_json(raw, "old")
    assert record.chars is None and record.prediction_bytes is None and record.to_json() == {**raw, "id": "0"}
    assert accuracy_columns([record])["acc_bytes"] is None


def test_our_format_and_hellaswag_fields(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"context": "The cat", "choices": [" sat", " flew"], "label": 0}) + "\n\n"
                    + json.dumps({"ctx": "A man is", "endings": ["running.", "a fish.", "blue."], "label": "2",
                                  "ind": 17}) + "\n", encoding="utf-8")
    task = load_task_file(path)
    assert task.name == "t" and len(task.items) == 2
    assert task.items[0] == TaskItem("The cat", (" sat", " flew"), 0, "0")
    # HellaSwag's endings keep lm-eval's target delimiter apart: scored as " " + ending, counted without it
    assert task.items[1] == TaskItem("A man is", ("running.", "a fish.", "blue."), 2, "17", " ")
    assert task.items[1].continuations == (" running.", " a fish.", " blue.")


@pytest.mark.parametrize("line, needle", [
    ('{"context": "a", "choices": ["x"], "label": 0}', "at least 2"),
    ('{"context": "a", "choices": ["x", "y"], "label": 2}', "'label' = 2"),
    ('{"context": "a", "choices": ["x", "y"]}', "no 'label'"),
    ('{"text": "a"}', "neither"),
    ('{"context": "a", ', "not valid JSON"),
])
def test_bad_task_lines_name_the_line(tmp_path, line, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"context": "a", "choices": ["x", "y"], "label": 1}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match=needle) as e:
        load_task_file(path)
    assert f"{path}:2" in str(e.value) or f"{path}: not valid JSON at line 2 " in str(e.value)


def test_item_i_is_noised_as_document_i_alone_and_inside_the_task():
    items = tuple(TaskItem(f"context number {i} with some words", (" one", " two"), 0) for i in range(6))
    task = Task("t", items)
    spec, contexts, choices = noised_items(task, "drop:p=0.3", 7, "context")
    for i in (0, 3, 5):
        assert contexts[i] == noise_lib.apply(items[i].context, spec, seed=7, doc_index=i)
    assert len(set(contexts)) == len(contexts)  # each item its own stream
    assert choices == [list(it.choices) for it in items]  # choices stay clean by default
    _, _, noisy_choices = noised_items(task, "uppercase", 7, "both")
    assert noisy_choices[0] == [" ONE", " TWO"]


def test_score_task_records_every_choice(mamba):
    task = Task("t", tuple(TaskItem(c, (" created", " made", " was"), i % 3, str(i))
                           for i, (c, _) in enumerate(PAIRS[:4])))
    scored = score_task(mamba, task, "drop:p=0.2", seed=1, batch_size=2)
    r = scored.result
    assert (r.task, r.noise, r.seed, r.items, r.choices) == ("t", "drop:p=0.2", 1, 4, 12)
    assert r.acc == sum(i.correct for i in scored.items) / 4
    _, contexts, _ = noised_items(task, "drop:p=0.2", 1, "context")
    direct = continuation_loglikelihoods(mamba, [(contexts[1], " made")])[0].loglikelihood
    assert scored.items[1].loglikelihoods[1] == pytest.approx(direct, abs=1e-4)  # other batch, other float32 sums
    assert all(math.isfinite(x) for item in scored.items for x in item.loglikelihoods)


@pytest.mark.parametrize("item, needle", [
    (TaskItem("ctx", (" a", " b"), 5), "'label' = 5"),
    (TaskItem("ctx", (" a",), 0), "at least 2"),
    (TaskItem(None, (" a", " b"), 0), "'context' must be a string"),
    ("not an item", "expected a robustbench_bytes.tasks.TaskItem"),
])
def test_a_registered_task_is_held_to_a_task_files_checks(runner, tiny_mamba, tmp_path, item, needle):
    """A plug-in (or any registered) task whose item a task file could not hold is refused before scoring."""
    from robustbench_bytes.cli import cli
    from robustbench_bytes.tasks import TASKS, TaskSource, register_task

    register_task(TaskSource("rb-broken", "a broken plug-in task", lambda: Task("rb-broken", (item,))))
    try:
        result = runner.invoke(cli, ["run", "--task", "rb-broken", "--model", str(tiny_mamba), "--out",
                                     str(tmp_path / "run"), "--quiet"])
    finally:
        TASKS.unregister("rb-broken")
    assert result.exit_code == 2, result.output
    assert "task 'rb-broken': item 0" in result.output and needle in result.output
    assert len(result.output.strip().splitlines()) == 1
