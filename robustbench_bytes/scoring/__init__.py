"""Scoring one cell (model x corpus x noise): the negative log-likelihood of every byte of every document.

Each document is encoded as the model's prefix (BOS/EOS token, or a prefix byte) followed by its tokens;
every token after the prefix is predicted once. Two strategies:

- streamed models (Mamba): exact. Documents are sorted by length, batched with right-padding (safe for causal
  models: padded targets are masked), and fed in chunks of `chunk_size` tokens with the recurrent state carried
  from chunk to chunk, so memory does not grow with the document.
- windowed models (Transformers): rolling windows as lm-evaluation-harness's `loglikelihood_rolling`. By default
  disjoint windows of `max_length` tokens: the first predicts its tokens from the prefix, each later one conditions
  on the single token before it (`context=1`). With `context` / `stride` later windows instead predict `stride`
  new tokens after at least `context` tokens of context. Every window is fed the longest input that fits
  (`max_length` tokens), so a short final window sees more context, as in lm-evaluation-harness.

float32 on the CPU; bf16 autocast on CUDA (recurrent state and log-softmax in fp32).

In the same pass each token's NLL is also added, in float64, to its document's position bucket (positions.py:
the bucket of the token's last byte in the noised text), giving the cell's and each document's `positions`.
"""

from __future__ import annotations

import contextvars
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from robustbench_bytes.scoring import positions as positions_lib
from robustbench_bytes.scoring import precision
from robustbench_bytes.errors import BadInput, RunFailed
from robustbench_bytes.progress import progress_bar
from robustbench_bytes.results.schema import CLEAN, CellResult, DocumentRecord, derived_metrics, metric_fields

SCORING_VERSION = "3"  # 3: results carry positions
DEFAULT_CHUNK_SIZE = 1024  # 512-2048 measured fastest on the CPU (bench/results/model.md); larger only costs memory
# Cap on logits held at once (batch x tokens x vocab floats, 64 MiB in float32;
# the zoo's 2048-token models keep 1024-token chunks at batch 8): with a large vocabulary the
# logits, not the network, dominate memory (mamba-130m: 50280 floats a token), so chunks / window batches shrink;
# scores do not depend on either. The NLL of those logits is then taken NLL_SLICE floats at a time, so its
# float32 log-softmax temporaries stay a fraction of them (bench/results/memory.md).
LOGITS_BUDGET = 1 << 24
NLL_SLICE = 1 << 22


class ScoringError(RunFailed):
    """Scoring could not produce a valid number (the cell fails; exit 1)."""


class NonFiniteScore(ScoringError):
    """A document's NLL is NaN or infinite."""


@dataclass
class CellScore:
    result: CellResult
    documents: list[DocumentRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    """Feed seq[start:end] (seq = prefix + tokens); score the last `scored` predictions, i.e. the targets
    seq[end - scored + 1 : end + 1]."""

    start: int
    end: int
    scored: int


def plan_windows(n_tokens: int, max_length: int, prefix_len: int = 1, context: int | None = None,
                 stride: int | None = None) -> list[Window]:
    """Windows covering the n_tokens targets that follow a prefix of prefix_len tokens, each target scored once.

    context: tokens a later window conditions on before its first scored target (default 1, disjoint windows);
    stride: targets scored per later window (default max_length - context + 1).
    """
    context, stride = window_options(max_length, context, stride)
    if prefix_len < 1:
        raise ValueError("prefix_len must be at least 1: the first token needs something to condition on")
    windows = []
    first_target, last = prefix_len, prefix_len + n_tokens  # targets occupy seq[prefix_len : last]
    target = first_target
    while target < last:
        if target == first_target:
            take = min(last - target, max(1, max_length - prefix_len + 1))
        else:
            take = min(last - target, stride)
        end = target + take - 1  # input seq[start:end] predicts seq[start+1 : end+1]
        start = max(0, end - max_length)
        windows.append(Window(start, end, take))
        target += take
    return windows


def window_options(max_length: int, context: int | None, stride: int | None) -> tuple[int, int]:
    """Validated (context, stride) for windows of max_length tokens."""
    if max_length < 1:
        raise BadInput(f"max_length={max_length}: expected a positive number of tokens")
    if context is None and stride is None:
        context = 1
    if context is None:
        context = max_length - stride + 1
    if stride is None:
        stride = max_length - context + 1
    if context < 1:
        raise BadInput(f"context={context}: expected at least 1 token")
    if stride < 1:
        raise BadInput(f"stride={stride}: expected at least 1 token")
    if context + stride - 1 > max_length:
        raise BadInput(f"context={context} with stride={stride} needs windows of {context + stride - 1} "
                       f"tokens; the model takes at most {max_length}")
    return context, stride


class _Progress:
    """Scoring progress: bytes/s, with documents done as a postfix."""

    def __init__(self, total_bytes: int, n_docs: int, enabled: bool, desc: str | None):
        self.n_docs, self.done_docs = n_docs, 0
        self.bar = progress_bar(enabled, total=total_bytes, unit="B", unit_scale=True, desc=desc or "scoring",
                                leave=False)
        self.bar.set_postfix_str(f"0/{n_docs} docs")

    def advance(self, n_bytes: float, docs: int = 0):
        self.bar.update(n_bytes)
        if docs:
            self.done_docs += docs
            self.bar.set_postfix_str(f"{self.done_docs}/{self.n_docs} docs")

    def close(self):
        self.bar.close()


class _BucketSums:
    """Every document's NLL per position bucket, added up in float64 on the scoring device. `buckets[i]` holds
    the bucket of each token of document i; inputs that are not a target (context, padding) go to a spare
    column, `sink`, that is dropped at the end."""

    def __init__(self, token_buckets: list[np.ndarray], device: torch.device):
        self.sink = max((int(b.max()) + 1 for b in token_buckets if len(b)), default=0)
        self.buckets = [torch.from_numpy(np.asarray(b, dtype=np.int64)) for b in token_buckets]
        self.sums = torch.zeros(len(token_buckets), self.sink + 1, dtype=torch.float64, device=device)

    def rows(self, n_rows: int, width: int) -> torch.Tensor:
        return torch.full((n_rows, width), self.sink, dtype=torch.long)

    def add(self, docs: torch.Tensor, buckets: torch.Tensor, token_nll: torch.Tensor) -> None:
        flat = (docs[:, None] * (self.sink + 1) + buckets).reshape(-1)
        self.sums.view(-1).index_add_(0, flat, token_nll.double().reshape(-1))

    def document(self, i: int, n_buckets: int) -> np.ndarray:
        return self.sums[i, :n_buckets].cpu().numpy()


# The dtype score_corpus scores in (set for the duration of one call, so the scoring loops need no argument).
_SCORING_DTYPE: contextvars.ContextVar[str | None] = contextvars.ContextVar("scoring_dtype", default=None)


def _autocast(device: torch.device):
    return precision.autocast(device, _SCORING_DTYPE.get())


def _token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-position NLL (fp32) with targets == -100 giving 0, computed a slice of positions at a time (each
    position's NLL depends on its own row of logits only, so slicing changes no number)."""
    b, L, V = logits.shape
    flat_logits, flat_targets = logits.reshape(b * L, V), targets.reshape(b * L)
    step = max(1, NLL_SLICE // V)
    nll = torch.empty(b * L, dtype=torch.float32, device=logits.device)
    for lo in range(0, b * L, step):
        nll[lo:lo + step] = F.cross_entropy(flat_logits[lo:lo + step].float(), flat_targets[lo:lo + step],
                                            ignore_index=-100, reduction="none")
    return nll.view(b, L)


def effective_chunk_size(chunk_size: int, batch: int, vocab_size: int | None) -> int:
    """chunk_size, shrunk (to no less than 64 tokens) when batch x chunk x vocab logits exceed LOGITS_BUDGET."""
    if not vocab_size:
        return chunk_size
    return max(1, min(chunk_size, max(64, LOGITS_BUDGET // (batch * vocab_size))))


def _score_streamed(model, sequences: list[list[int]], prefix_len: int, batch_size: int, chunk_size: int,
                    progress: _Progress, doc_bytes: list[int], by_position: _BucketSums | None = None) -> list[float]:
    nlls = [0.0] * len(sequences)
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    order = [i for i in order if len(sequences[i]) > prefix_len]
    device = model.device
    for lo in range(0, len(order), batch_size):
        batch = order[lo:lo + batch_size]
        width = len(sequences[batch[0]]) - 1  # inputs: seq[:-1]; targets: seq[1:]
        inputs = torch.zeros(len(batch), width, dtype=torch.long)
        targets = torch.full((len(batch), width), -100, dtype=torch.long)
        buckets = by_position.rows(len(batch), width) if by_position else None
        for row, i in enumerate(batch):
            seq = torch.tensor(sequences[i], dtype=torch.long)
            n = len(seq) - 1
            inputs[row, :n] = seq[:-1]
            targets[row, prefix_len - 1:n] = seq[prefix_len:]  # the prefix itself is context, never a target
            if by_position:
                buckets[row, prefix_len - 1:n] = by_position.buckets[i]
        inputs, targets = inputs.to(device), targets.to(device)
        if by_position:
            buckets, docs = buckets.to(device), torch.tensor(batch, device=device)
        totals = torch.zeros(len(batch), dtype=torch.float64, device=device)
        batch_bytes = sum(doc_bytes[i] for i in batch)
        lengths = torch.tensor([len(sequences[i]) - 1 for i in batch], device=device)
        rows = torch.arange(len(batch), device=device)  # rows still running (longest first)
        state = None
        chunk = effective_chunk_size(chunk_size, len(batch), model.vocab_size)
        for start in range(0, width, chunk):
            stop = min(width, start + chunk)
            running = int((lengths > start).sum())
            if running < len(rows) and hasattr(state, "select"):  # documents that ended leave the batch
                rows, state = rows[:running], state.select(slice(0, running))
            with _autocast(device):
                logits, state = model.stream(inputs[rows, start:stop], state)
            token_nll = _token_nll(logits, targets[rows, start:stop])
            del logits  # else it lives on while the next chunk's logits are computed: twice the budget
            totals[rows] += token_nll.double().sum(dim=1)
            if by_position:
                by_position.add(docs[rows], buckets[rows, start:stop], token_nll)
            progress.advance(batch_bytes * (stop - start) / width)
        for row, i in enumerate(batch):
            nlls[i] = float(totals[row])
        progress.advance(0, docs=len(batch))
    return nlls


def _score_windowed(model, sequences: list[list[int]], prefix_len: int, batch_size: int, max_length: int,
                    context: int | None, stride: int | None, progress: _Progress,
                    doc_bytes: list[int], by_position: _BucketSums | None = None) -> list[float]:
    nlls = [0.0] * len(sequences)
    jobs = []  # (doc, window)
    for i, seq in enumerate(sequences):
        for w in plan_windows(len(seq) - prefix_len, max_length, prefix_len, context, stride):
            jobs.append((i, w))
    windows_left = [0] * len(sequences)
    for i, _ in jobs:
        windows_left[i] += 1
    jobs.sort(key=lambda job: -(job[1].end - job[1].start))
    device = model.device
    per_forward = max(1, min(batch_size, LOGITS_BUDGET // (max_length * (model.vocab_size or 1))))
    for lo in range(0, len(jobs), per_forward):
        batch = jobs[lo:lo + per_forward]
        width = max(w.end - w.start for _, w in batch)
        inputs = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        targets = torch.full((len(batch), width), -100, dtype=torch.long)
        buckets = by_position.rows(len(batch), width) if by_position else None
        for row, (i, w) in enumerate(batch):
            seq = sequences[i]
            n = w.end - w.start
            inputs[row, :n] = torch.tensor(seq[w.start:w.end])
            mask[row, :n] = 1
            targets[row, n - w.scored:n] = torch.tensor(seq[w.end - w.scored + 1:w.end + 1])
            if by_position:  # target seq[j] is token j - prefix_len of the document
                first = w.end - w.scored + 1 - prefix_len
                buckets[row, n - w.scored:n] = by_position.buckets[i][first:first + w.scored]
        inputs, mask, targets = inputs.to(device), mask.to(device), targets.to(device)
        with _autocast(device):
            logits = model.window(inputs, mask)
        token_nll = _token_nll(logits, targets)
        del logits  # as in _score_streamed
        totals = token_nll.double().sum(dim=1).tolist()
        if by_position:
            by_position.add(torch.tensor([i for i, _ in batch], device=device), buckets.to(device), token_nll)
        finished = 0
        for (i, w), total in zip(batch, totals):
            nlls[i] += total
            windows_left[i] -= 1
            finished += windows_left[i] == 0
            progress.advance(doc_bytes[i] * w.scored / max(1, len(sequences[i]) - prefix_len))
        progress.advance(0, docs=finished)
    return nlls


def _apply_noise(documents: list[str], noise: str, seed: int, indices: list[int]) -> tuple[str, list[str]]:
    from robustbench_bytes import noise as noise_lib

    spec = noise_lib.canonical(noise or CLEAN)  # "clean" is a noise of its own, the identity
    return spec, (list(documents) if spec == CLEAN
                  else noise_lib.apply_corpus(documents, spec, seed=seed, indices=indices))


def scoring_options(model, chunk_size: int = DEFAULT_CHUNK_SIZE, context: int | None = None,
                    stride: int | None = None, max_length: int | None = None) -> dict:
    """The resolved scoring method of a model (recorded in results and in a cell's fingerprint)."""
    if chunk_size < 1:
        raise BadInput(f"chunk_size={chunk_size}: expected at least 1 token")
    if model.streaming:
        return {"method": "streamed", "chunk_size": chunk_size}
    max_length = max_length or model.max_length
    if model.max_length and max_length > model.max_length and not positions_lib.extends_past_window(model):
        raise BadInput(f"max_length={max_length}: the model takes at most {model.max_length} tokens (longer "
                       f"windows only for rotary positions)")
    context, stride = window_options(max_length, context, stride)
    return {"method": "rolling_windows", "max_length": max_length, "context": context, "stride": stride}


def score_corpus(model, corpus, noise: str = "clean", seed: int = 0, *, batch_size: int = 8,
                 progress: bool = True, desc: str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 context: int | None = None, stride: int | None = None,
                 max_length: int | None = None, record_positions: bool = True,
                 indices: list[int] | None = None, dtype: str | None = None) -> CellScore:
    """Scores `corpus` (a corpora.Corpus) under `noise` with `model` (a models.LoadedModel).

    indices: the documents' numbers in a larger corpus this one is a share of (its noise streams and the
    records' `index`; default 0..n-1); a share may hold only empty documents. dtype: see precision.py.

    Raises BadInput for an empty corpus, NonFiniteScore naming the first document whose NLL is NaN or
    infinite. A derived metric that is undefined (word perplexity past the largest float) is None, with
    the reason in the result's `undefined`. record_positions=False leaves out `positions` (they also stay
    out when the tokenizer cannot say which bytes each token stands for)."""
    if batch_size < 1:
        raise BadInput(f"batch_size={batch_size}: expected at least 1")
    is_share, indices = indices is not None, list(range(len(corpus.documents))) if indices is None else list(indices)
    if len(indices) != len(corpus.documents):
        raise BadInput(f"indices: {len(indices)} numbers for {len(corpus.documents)} documents")
    if not corpus.documents or (corpus.bytes == 0 and not is_share):
        raise BadInput(f"corpus {corpus.name}: {'holds no documents' if not corpus.documents else 'every document is empty'}"
                       f"; nothing to score")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise BadInput(f"seed={seed!r}: expected an integer >= 0")
    method = scoring_options(model, chunk_size, context, stride, max_length)
    dtype_label = precision.label(model.device, dtype)
    spec, texts = _apply_noise(corpus.documents, noise, seed, indices)
    clean_bytes = [len(d.encode("utf-8")) for d in corpus.documents]
    clean_words = [len(d.split()) for d in corpus.documents]
    noisy_bytes = [len(t.encode("utf-8")) for t in texts]

    module = model.module
    was_training = module.training
    module.eval()
    bar = _Progress(sum(noisy_bytes), len(texts), progress, desc)
    dtype_token = _SCORING_DTYPE.set(dtype)
    started = time.perf_counter()
    try:
        prefix = list(model.tokenizer.prefix_ids)
        encoded = [_encode(model.tokenizer, t, n, record_positions) for t, n in zip(texts, noisy_bytes)]
        sequences = [prefix + ids for ids, _ in encoded]
        byte_lengths = [lengths for _, lengths in encoded]
        by_position = None
        if all(lengths is not None for lengths in byte_lengths):
            token_buckets = [positions_lib.token_buckets(lengths) for lengths in byte_lengths]
            by_position = _BucketSums(token_buckets, model.device)
        with torch.inference_mode():
            if model.streaming:
                nlls = _score_streamed(model, sequences, len(prefix), batch_size, chunk_size, bar, noisy_bytes,
                                       by_position)
            else:
                nlls = _score_windowed(model, sequences, len(prefix), batch_size, method["max_length"],
                                       method["context"], method["stride"], bar, noisy_bytes, by_position)
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)
    finally:
        seconds = time.perf_counter() - started
        _SCORING_DTYPE.reset(dtype_token)
        bar.close()
        module.train(was_training)

    doc_ids = list(corpus.doc_ids) or [str(i) for i in indices]
    documents, doc_positions = [], []
    for i, nll in enumerate(nlls):
        if not math.isfinite(nll):
            raise NonFiniteScore(f"model {model.name}: document {indices[i]} ({doc_ids[i]}) of corpus {corpus.name} "
                                 f"under noise {spec} has a non-finite NLL ({nll})")
        if by_position:
            n_buckets = positions_lib.buckets_for_length(noisy_bytes[i])
            doc_positions.append(positions_lib.Positions.from_sums(
                by_position.document(i, n_buckets),
                positions_lib.bucket_bytes(token_buckets[i], byte_lengths[i], n_buckets)))
        documents.append(DocumentRecord(index=indices[i], id=str(doc_ids[i]), nll=nll, tokens=len(sequences[i]) - len(prefix),
                                        bytes=noisy_bytes[i], clean_bytes=clean_bytes[i],
                                        clean_words=clean_words[i],
                                        positions=doc_positions[-1].to_json() if by_position else None))

    total_nll = math.fsum(nlls)
    n_bytes = sum(noisy_bytes)
    tokens = sum(d.tokens for d in documents)
    values, undefined = derived_metrics(total_nll, n_bytes, sum(clean_bytes), sum(clean_words), tokens)
    values, registered = metric_fields(values)  # a registered metric is no field: it goes in extra
    result = CellResult(
        model=model.name, model_spec=model.spec or model.name, noise=spec, seed=seed, corpus=corpus.name,
        documents=len(texts), level=model.level, architecture=model.architecture,
        nll=total_nll, bytes=n_bytes, clean_bytes=sum(clean_bytes), clean_words=sum(clean_words),
        tokens=tokens, **values, undefined=undefined,
        seconds=seconds, bytes_per_second=n_bytes / seconds if seconds > 0 else None,
        prefix=model.prefix, scoring=method, batch_size=batch_size, scoring_version=SCORING_VERSION,
        device=str(model.device), dtype=dtype_label, parameters=model.parameters,
        model_fingerprint=model.fingerprint, checkpoint_sha256=model.checkpoint_sha256,
        corpus_sha256=corpus.sha256,
        positions=positions_lib.total(doc_positions).to_json() if by_position else None,
        **_train_length(model), extra=registered,
    )
    return CellScore(result=result, documents=documents)


def _encode(tokenizer, text: str, n_bytes: int, with_lengths: bool) -> tuple[list[int], np.ndarray | None]:
    """The token ids of `text`, and each token's bytes of it when the tokenizer can tell (None otherwise, or
    when the lengths do not account for the text's n_bytes bytes exactly)."""
    if not with_lengths or not hasattr(tokenizer, "encode_with_byte_lengths"):
        return list(tokenizer.encode(text)), None
    ids, lengths = tokenizer.encode_with_byte_lengths(text)
    lengths = np.asarray(lengths, dtype=np.int64)
    ok = len(lengths) == len(ids) and int(lengths.sum()) == n_bytes and (lengths >= 0).all()
    return list(ids), lengths if ok else None


def _train_length(model) -> dict:
    declared = positions_lib.declared_train_length(model)
    return {"train_length_bytes": declared["bytes"], "train_length_tokens": declared["tokens"]}
