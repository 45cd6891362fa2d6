"""The batched forward passes: a corpus's documents streamed or in windows, and the window loop of every scorer.

score_streamed (Mamba) is exact: documents sorted by length, batched with right-padding (safe for causal models:
padded targets are masked), fed `chunk_size` tokens at a time with the recurrent state carried from chunk to chunk,
so memory does not grow with the document. score_windowed (Transformers) feeds the windows of windows.py. Both
give each document's NLL, summed in float64, and add each token's NLL to its position bucket (BucketSums).
window_batches is the one loop that feeds windows to a model, for documents here and for multiple-choice pairs
(tasks.py).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from robustbench_bytes.progress import progress_bar
from robustbench_bytes.scoring import precision
from robustbench_bytes.scoring.windows import Window, plan_windows

DEFAULT_CHUNK_SIZE = 1024  # 512-2048 measured fastest on the CPU (bench/results/model.md); larger only costs memory
# Cap on logits held at once (batch x tokens x vocab floats, 64 MiB in float32;
# the zoo's 2048-token models keep 1024-token chunks at batch 8): with a large vocabulary the
# logits, not the network, dominate memory (mamba-130m: 50280 floats a token), so chunks / window batches shrink;
# scores do not depend on either. The NLL of those logits is then taken NLL_SLICE floats at a time, so its
# float32 log-softmax temporaries stay a fraction of them (bench/results/memory.md).
LOGITS_BUDGET = 1 << 24
NLL_SLICE = 1 << 22


class Progress:
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


class BucketSums:
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


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
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


def window_batches(model, jobs: list[tuple[list[int], Window]], batch_size: int, max_length: int,
                   dtype: str | None):
    """Feeds every (sequence, window) of `jobs` to a windowed model, longest window first, up to batch_size
    windows a forward (fewer when their logits would pass LOGITS_BUDGET). Yields (the batch's job numbers,
    logits, targets): row r is job batch[r]'s window, right-padded, its scored targets at its last `scored`
    positions and -100 everywhere else. The caller drops the logits before asking for the next batch."""
    order = sorted(range(len(jobs)), key=lambda k: -(jobs[k][1].end - jobs[k][1].start))
    device = model.device
    per_forward = max(1, min(batch_size, LOGITS_BUDGET // (max_length * (model.vocab_size or 1))))
    for lo in range(0, len(order), per_forward):
        batch = order[lo:lo + per_forward]
        width = max(jobs[k][1].end - jobs[k][1].start for k in batch)
        inputs = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        targets = torch.full((len(batch), width), -100, dtype=torch.long)
        for row, k in enumerate(batch):
            seq, w = jobs[k]
            n = w.end - w.start
            inputs[row, :n] = torch.tensor(seq[w.start:w.end])
            mask[row, :n] = 1
            targets[row, n - w.scored:n] = torch.tensor(seq[w.end - w.scored + 1:w.end + 1])
        with precision.autocast(device, dtype):
            logits = model.window(inputs.to(device), mask.to(device))
        yield batch, logits, targets.to(device)
        del logits  # else it lives on while the next batch's logits are computed: twice the budget


def score_streamed(model, sequences: list[list[int]], prefix_len: int, batch_size: int, chunk_size: int,
                   progress: Progress, doc_bytes: list[int], by_position: BucketSums | None,
                   dtype: str | None) -> list[float]:
    """Each sequence's (prefix + tokens) NLL of its tokens, fed to a streamed model."""
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
            with precision.autocast(device, dtype):
                logits, state = model.stream(inputs[rows, start:stop], state)
            nll = token_nll(logits, targets[rows, start:stop])
            del logits  # else it lives on while the next chunk's logits are computed: twice the budget
            totals[rows] += nll.double().sum(dim=1)
            if by_position:
                by_position.add(docs[rows], buckets[rows, start:stop], nll)
            progress.advance(batch_bytes * (stop - start) / width)
        for row, i in enumerate(batch):
            nlls[i] = float(totals[row])
        progress.advance(0, docs=len(batch))
    return nlls


def score_windowed(model, sequences: list[list[int]], prefix_len: int, batch_size: int, max_length: int,
                   context: int | None, stride: int | None, progress: Progress, doc_bytes: list[int],
                   by_position: BucketSums | None, dtype: str | None) -> list[float]:
    """Each sequence's (prefix + tokens) NLL of its tokens, fed to a windowed model in windows (windows.py)."""
    nlls = [0.0] * len(sequences)
    jobs = [(i, w) for i, seq in enumerate(sequences)
            for w in plan_windows(len(seq) - prefix_len, max_length, prefix_len, context, stride)]
    windows_left = [0] * len(sequences)
    for i, _ in jobs:
        windows_left[i] += 1
    device = model.device
    feed = [(sequences[i], w) for i, w in jobs]
    for batch, logits, targets in window_batches(model, feed, batch_size, max_length, dtype):
        nll = token_nll(logits, targets)
        del logits  # as in window_batches
        totals = nll.double().sum(dim=1).tolist()
        if by_position:  # target seq[j] is token j - prefix_len of the document
            buckets = by_position.rows(len(batch), nll.shape[1])
            for row, k in enumerate(batch):
                i, w = jobs[k]
                n, first = w.end - w.start, w.end - w.scored + 1 - prefix_len
                buckets[row, n - w.scored:n] = by_position.buckets[i][first:first + w.scored]
            by_position.add(torch.tensor([jobs[k][0] for k in batch], device=device), buckets.to(device), nll)
        finished = 0
        for k, total in zip(batch, totals):
            i, w = jobs[k]
            nlls[i] += total
            windows_left[i] -= 1
            finished += windows_left[i] == 0
            progress.advance(doc_bytes[i] * w.scored / max(1, len(sequences[i]) - prefix_len))
        progress.advance(0, docs=finished)
    return nlls
