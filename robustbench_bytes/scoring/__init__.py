"""Scoring one cell (model x corpus x noise): the negative log-likelihood of every byte of every document.

Each document is encoded as the model's prefix (BOS/EOS token, or a prefix byte) followed by its tokens;
every token after the prefix is predicted once. Two strategies (loop.py):

- streamed models (Mamba): exact, the recurrent state carried from chunk to chunk of `chunk_size` tokens.
- windowed models (Transformers): rolling windows as lm-evaluation-harness's `loglikelihood_rolling`
  (windows.py: disjoint windows of `max_length` tokens by default, or `context` / `stride`).

float32 on the CPU; bf16 autocast on CUDA (recurrent state and log-softmax in fp32).

In the same pass each token's NLL is also added, in float64, to its document's position bucket (positions.py:
the bucket of the token's last byte in the noised text), giving the cell's and each document's `positions`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from robustbench_bytes.errors import BadInput, RunFailed
from robustbench_bytes.results.schema import CLEAN, CellResult, DocumentRecord, derived_metrics, metric_fields
from robustbench_bytes.models import lengths
from robustbench_bytes.results import positions as positions_lib
from robustbench_bytes.scoring import precision
from robustbench_bytes.scoring.loop import (DEFAULT_CHUNK_SIZE, BucketSums, Progress, effective_chunk_size,
                                            score_streamed, score_windowed)
from robustbench_bytes.scoring.windows import Window, plan_windows, window_options

__all__ = ["DEFAULT_CHUNK_SIZE", "SCORING_VERSION", "CellScore", "NonFiniteScore", "ScoringError", "Window",
           "effective_chunk_size", "plan_windows", "score_corpus", "scoring_options", "window_options"]

SCORING_VERSION = "3"  # 3: results carry positions


class ScoringError(RunFailed):
    """Scoring could not produce a valid number (the cell fails; exit 1)."""


class NonFiniteScore(ScoringError):
    """A document's NLL is NaN or infinite."""


@dataclass
class CellScore:
    result: CellResult
    documents: list[DocumentRecord] = field(default_factory=list)


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
    if model.max_length and max_length > model.max_length and not lengths.extends_past_window(model):
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
        why = "holds no documents" if not corpus.documents else "every document is empty"
        raise BadInput(f"corpus {corpus.name}: {why}; nothing to score")
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
    bar = Progress(sum(noisy_bytes), len(texts), progress, desc)
    started = time.perf_counter()
    try:
        prefix = list(model.tokenizer.prefix_ids)
        encoded = [encode_document(model.tokenizer, t, n, record_positions) for t, n in zip(texts, noisy_bytes)]
        sequences = [prefix + ids for ids, _ in encoded]
        byte_lengths = [lengths for _, lengths in encoded]
        by_position = None
        if all(lengths is not None for lengths in byte_lengths):
            token_buckets = [positions_lib.token_buckets(lengths) for lengths in byte_lengths]
            by_position = BucketSums(token_buckets, model.device)
        with torch.inference_mode():
            if model.streaming:
                nlls = score_streamed(model, sequences, len(prefix), batch_size, chunk_size, bar, noisy_bytes,
                                      by_position, dtype)
            else:
                nlls = score_windowed(model, sequences, len(prefix), batch_size, method["max_length"],
                                      method["context"], method["stride"], bar, noisy_bytes, by_position, dtype)
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)
    finally:
        seconds = time.perf_counter() - started
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
        documents.append(DocumentRecord(index=indices[i], id=str(doc_ids[i]), nll=nll,
                                        tokens=len(sequences[i]) - len(prefix), bytes=noisy_bytes[i],
                                        clean_bytes=clean_bytes[i], clean_words=clean_words[i],
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


def encode_document(tokenizer, text: str, n_bytes: int, with_lengths: bool) -> tuple[list[int], np.ndarray | None]:
    """The token ids of `text`, and each token's bytes of it when the tokenizer can tell (None otherwise, or
    when the lengths do not account for the text's n_bytes bytes exactly)."""
    if not with_lengths or not hasattr(tokenizer, "encode_with_byte_lengths"):
        return list(tokenizer.encode(text)), None
    ids, lengths = tokenizer.encode_with_byte_lengths(text)
    lengths = np.asarray(lengths, dtype=np.int64)
    ok = len(lengths) == len(ids) and int(lengths.sum()) == n_bytes and (lengths >= 0).all()
    return list(ids), lengths if ok else None


def _train_length(model) -> dict:
    declared = lengths.declared_train_length(model)
    return {"train_length_bytes": declared["bytes"], "train_length_tokens": declared["tokens"]}
