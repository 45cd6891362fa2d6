"""Scoring multiple-choice tasks: the log-likelihood of a continuation given a context, and a task cell's
acc / acc_norm / acc_bytes (lm-evaluation-harness's definitions) with bootstrap intervals over items.

continuation_loglikelihoods(model, pairs) is the one function that scores (context, continuation) pairs; the
task cells and the lm-evaluation-harness bridge both call it. A pair is encoded as lm-evaluation-harness
does: whitespace at the end of the context moves to the front of the continuation, the continuation's
tokens are those of encode(context + continuation) after the first len(encode(context)); then the model's
usual prefix (BOS/EOS token, or a prefix byte) goes in front of the context, as in every other score here
(prefix="always"). prefix="empty_context" is lm-evaluation-harness's `hf` model with its default
add_bos_token for a tokenizer that adds no BOS itself (GPT-2's): the prefix only in front of an empty context.
A NaN or infinite log-likelihood is never returned: NonFiniteLogLikelihood names the pair.

- streamed models (Mamba): each distinct context is run once, contexts of equal length batched together,
  and its recurrent state is copied to each of its continuations, which are batched with right padding.
- windowed models (Transformers): prefix + context + continuation in one window of at most max_length
  tokens (the context cut from the left when longer, as lm-evaluation-harness does), fed by the window loop of
  corpus scoring (loop.window_batches).

dtype as everywhere (precision.py): auto is float32 on the CPU and bf16 autocast on CUDA.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from robustbench_bytes.errors import BadInput
from robustbench_bytes.results.resampled import accuracies
from robustbench_bytes.results.schema import CLEAN
from robustbench_bytes.results.task_schema import NOISE_TARGETS, ItemRecord, TaskResult, predictions
from robustbench_bytes.scoring import NonFiniteScore, precision
from robustbench_bytes.scoring.loop import DEFAULT_CHUNK_SIZE, effective_chunk_size, window_batches
from robustbench_bytes.scoring.windows import Window

TASK_SCORING_VERSION = "2"  # 2: acc_norm per character (lm-eval's), acc_bytes per byte; 1: acc_norm per byte
# Streams of noised choices: choice j of item i draws from document index CHOICE_STREAMS + i * MAX_CHOICES + j,
# apart from every context's stream (item i is document i), whatever the task's size.
CHOICE_STREAMS = 1 << 40
MAX_CHOICES = 1 << 16


PREFIXES = ("always", "empty_context")


class NonFiniteLogLikelihood(NonFiniteScore):
    """A continuation's log-likelihood is NaN or infinite: no accuracy can be computed from it (the cell fails)."""

    def __init__(self, index: int, value: float, model: str, where: str = ""):
        super().__init__(f"model {model}: {where or f'pair {index}'} has a non-finite log-likelihood ({value})")
        self.index, self.value, self.model = index, value, model


@dataclass(frozen=True)
class ContinuationScore:
    loglikelihood: float  # sum over the continuation's tokens of log p(token | everything before), nats
    greedy: bool  # every continuation token is the model's argmax
    tokens: int


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) without the prefix, split as lm-evaluation-harness splits them."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = list(tokenizer.encode(context + continuation))
    context_ids = list(tokenizer.encode(context)) if context else []
    return whole[:len(context_ids)], whole[len(context_ids):]


def _gather(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per position: log p(target) in fp32 and whether target is the argmax; targets < 0 give 0 / True."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    safe = targets.clamp(min=0)
    picked = logprobs.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    hit = logprobs.argmax(dim=-1) == safe
    valid = targets >= 0
    return torch.where(valid, picked, torch.zeros_like(picked)).double(), hit | ~valid


def _score_windowed(model, encoded, batch_size: int, dtype: str) -> list[ContinuationScore]:
    max_length = model.max_length
    jobs = []  # (sequence, the window of its continuation)
    for prefix_context, continuation in encoded:
        if len(continuation) > max_length:
            raise BadInput(f"a continuation of {len(continuation)} tokens does not fit the model's "
                           f"{max_length}-token window")
        seq = (prefix_context + continuation)[-(max_length + 1):]
        jobs.append((seq, Window(0, len(seq) - 1, len(continuation))))
    out: list[ContinuationScore | None] = [None] * len(encoded)
    for rows, logits, targets in window_batches(model, jobs, batch_size, max_length, dtype):
        logprob, hit = _gather(logits, targets)
        del logits  # as in window_batches
        for r, i in enumerate(rows):
            out[i] = ContinuationScore(float(logprob[r].sum()), bool(hit[r].all()), len(encoded[i][1]))
    return out


def _score_streamed(model, encoded, batch_size: int) -> list[ContinuationScore]:
    out: list[ContinuationScore | None] = [None] * len(encoded)
    contexts: dict[tuple, list[int]] = {}  # prefix + context -> the pairs that continue it
    for i, (prefix_context, _) in enumerate(encoded):
        contexts.setdefault(tuple(prefix_context), []).append(i)
    by_length: dict[int, list[tuple]] = {}
    for ctx in contexts:
        by_length.setdefault(len(ctx), []).append(ctx)
    device = model.device
    for length in sorted(by_length, reverse=True):
        group = by_length[length]
        for lo in range(0, len(group), batch_size):
            batch = group[lo:lo + batch_size]
            # the state after every context token but the last; the last is fed with each continuation
            feed = torch.tensor([list(ctx[:-1]) for ctx in batch], dtype=torch.long, device=device)
            chunk = effective_chunk_size(DEFAULT_CHUNK_SIZE, len(batch), model.vocab_size)
            _, state = model.stream(feed[:, :chunk], None)  # a context of no tokens gives the initial state
            for start in range(chunk, feed.shape[1], chunk):
                _, state = model.stream(feed[:, start:start + chunk], state)
            pairs = [(row, i) for row, ctx in enumerate(batch) for i in contexts[ctx]]
            width = max(len(encoded[i][1]) for _, i in pairs)
            inputs = torch.zeros(len(pairs), width, dtype=torch.long)
            targets = torch.full((len(pairs), width), -1, dtype=torch.long)
            for r, (row, i) in enumerate(pairs):
                continuation = encoded[i][1]
                inputs[r, :len(continuation)] = torch.tensor([batch[row][-1]] + continuation[:-1])
                targets[r, :len(continuation)] = torch.tensor(continuation)
            copies = state.select(torch.tensor([row for row, _ in pairs], device=device))
            logits, _ = model.stream(inputs.to(device), copies)
            logprob, hit = _gather(logits, targets.to(device))
            for r, (_, i) in enumerate(pairs):
                out[i] = ContinuationScore(float(logprob[r].sum()), bool(hit[r].all()), len(encoded[i][1]))
    return out


def continuation_loglikelihoods(model, pairs: list[tuple[str, str]], *, batch_size: int = 32,
                                dtype: str = "auto", prefix: str = "always") -> list[ContinuationScore]:
    """log p(continuation | prefix + context) for each (context, continuation) pair, in order; every value
    finite (else NonFiniteLogLikelihood)."""
    if batch_size < 1:
        raise BadInput(f"batch_size={batch_size}: expected at least 1")
    if prefix not in PREFIXES:
        raise BadInput(f"prefix={prefix!r}: expected one of {', '.join(PREFIXES)}")
    prefix_ids = list(model.tokenizer.prefix_ids)
    encoded = []
    for n, (context, continuation) in enumerate(pairs):
        if not isinstance(context, str) or not isinstance(continuation, str):
            raise BadInput(f"pair {n}: expected (context, continuation) strings")
        context_ids, continuation_ids = encode_pair(model.tokenizer, context, continuation)
        if not continuation_ids:
            raise BadInput(f"pair {n}: the continuation {continuation!r} is empty; nothing to score")
        conditioned = prefix_ids + context_ids if prefix == "always" or not context_ids else context_ids
        encoded.append((conditioned, continuation_ids))
    if not encoded:
        return []
    module = model.module
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode(), precision.autocast(model.device, dtype):
            scores = (_score_streamed(model, encoded, batch_size) if model.streaming
                      else _score_windowed(model, encoded, batch_size, dtype))
    finally:
        module.train(was_training)
    for n, score in enumerate(scores):
        if not math.isfinite(score.loglikelihood):
            raise NonFiniteLogLikelihood(n, score.loglikelihood, model.name)
    return scores


# ---------------------------------------------------------------- a task cell


@dataclass
class TaskScore:
    result: TaskResult
    items: list[ItemRecord]


def noised_items(task, noise: str, seed: int, target: str = "context") -> tuple[str, list[str], list[list[str]]]:
    """(canonical noise, contexts, choices) as scored, without the items' delimiters: the noise changes the
    contexts, the choices (the completion target) or both. Item i's context is document i of the seeded streams,
    choice j of item i document CHOICE_STREAMS + i * MAX_CHOICES + j, so each text is noised alike whatever
    else is noised."""
    from robustbench_bytes import noise as noise_lib

    if target not in NOISE_TARGETS:
        raise BadInput(f"noise target {target!r}: expected one of {', '.join(NOISE_TARGETS)}")
    contexts = [item.context for item in task.items]
    choices = [list(item.choices) for item in task.items]
    spec = noise_lib.canonical(noise or CLEAN)
    if spec == CLEAN:
        return spec, contexts, choices
    if target in ("context", "both"):
        contexts = noise_lib.apply_corpus(contexts, spec, seed=seed)
    if target in ("completion", "both"):
        flat = [(i, j, c) for i, row in enumerate(choices) for j, c in enumerate(row)]
        if any(j >= MAX_CHOICES for _, j, _ in flat):
            raise BadInput(f"task {task.name}: an item has more than {MAX_CHOICES} choices")
        noised = noise_lib.apply_corpus([c for _, _, c in flat], spec, seed=seed,
                                        indices=[CHOICE_STREAMS + i * MAX_CHOICES + j for i, j, _ in flat])
        for (i, j, _), text in zip(flat, noised):
            choices[i][j] = text
    return spec, contexts, choices


def item_records(lls: list[list[float]], choices: list[list[str]], tokens: list[list[int]], task) -> list[ItemRecord]:
    """Each item's record: log-likelihoods, the choices' bytes and characters (as scored, without the
    delimiter) and the predictions of acc, acc_norm and acc_bytes (task_schema.predictions)."""
    records = []
    for i, item in enumerate(task.items):
        sizes = [len(c.encode("utf-8")) for c in choices[i]]
        chars = [len(c) for c in choices[i]]
        prediction, norm, per_byte = predictions(lls[i], sizes, chars)
        records.append(ItemRecord(index=i, id=item.id, label=item.label, loglikelihoods=[float(x) for x in lls[i]],
                                  bytes=sizes, tokens=list(tokens[i]), prediction=prediction, prediction_norm=norm,
                                  chars=chars, prediction_bytes=per_byte))
    return records


def score_task(model, task, noise: str = CLEAN, seed: int = 0, *, noise_target: str = "context",
               batch_size: int = 32, dtype: str = "auto", task_spec: str | None = None,
               confidence: float = 0.95) -> TaskScore:
    """Scores every choice of every item of `task` (a tasks.Task) under `noise` with `model` (LoadedModel), the
    noise on the item's part `noise_target` (context, completion or both)."""
    if not task.items:
        raise BadInput(f"task {task.name}: holds no items")
    started = time.perf_counter()
    spec, contexts, choices = noised_items(task, noise, seed, noise_target)
    pairs = [(contexts[i], item.delimiter + c) for i, item in enumerate(task.items) for c in choices[i]]
    try:
        scores = continuation_loglikelihoods(model, pairs, batch_size=batch_size, dtype=dtype)
    except NonFiniteLogLikelihood as e:
        item = next(i for i, end in enumerate(np.cumsum([len(row) for row in choices])) if e.index < end)
        raise NonFiniteLogLikelihood(e.index, e.value, e.model, where=f"item {item} ({task.items[item].id}) of "
                                     f"task {task.name} under noise {spec}") from None
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    lls, tokens, k = [], [], 0
    for row in choices:
        got = scores[k:k + len(row)]
        k += len(row)
        lls.append([s.loglikelihood for s in got])
        tokens.append([s.tokens for s in got])
    items = item_records(lls, choices, tokens, task)
    result = TaskResult(
        task=task.name, task_spec=task_spec or task.name, model=model.name, model_spec=model.spec or model.name,
        noise=spec, seed=seed, items=len(items), noise_target=noise_target if spec != CLEAN else "context",
        **accuracies(items, confidence), confidence=confidence, choices=len(pairs), level=model.level,
        architecture=model.architecture, prefix=model.prefix, seconds=time.perf_counter() - started,
        device=str(model.device), dtype=precision.label(model.device, dtype), scoring_version=TASK_SCORING_VERSION,
        model_fingerprint=model.fingerprint, task_sha256=task.sha256)
    return TaskScore(result, items)
