"""A cell scored in shares: each rank's shard (its documents' records) as a file in the run directory, and the
merge of the shards into the one cell result a single process gives.

cells/<cell>.shards/rank-K-of-N-<digest>.json holds one rank's share of one attempt at a cell (digest: of the
document numbers it covers, so a later attempt with another plan never overwrites it): the inputs fingerprint,
the share's own result object (model identity, device, dtype) and its per-document records. A rerun reuses
the documents of every shard whose inputs match and scores only the rest; once the cell file is written the
shards are removed.

The merge puts the documents in document order and recomputes every total from them (math.fsum of the NLLs,
integer sums, positions added in document order), exactly as scoring does for a whole corpus, so the merged
cell equals a single process's whenever each document's NLL does.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from robustbench_bytes import results as results_io
from robustbench_bytes.files import read_json
from robustbench_bytes.results import positions
from robustbench_bytes.results.schema import CellResult, DocumentRecord, derived_metrics, metric_fields

SHARD_FORMAT = "robustbench-shard/1"
SHARDS_SUFFIX = ".shards"


@dataclass(frozen=True)
class Shard:
    """One rank's share of a cell: the records it scored (none for an empty share), or why it failed."""

    rank: int
    world_size: int
    documents: tuple[DocumentRecord, ...] = ()
    result: CellResult | None = None  # the share's own result; None for an empty or failed share
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def log(self) -> dict:
        """What the manifest records of this rank's part of a scored cell."""
        return {"rank": self.rank, "documents": len(self.documents), "bytes": sum(d.bytes for d in self.documents),
                "seconds": self.seconds, "device": self.result.device if self.result else None,
                **({"error": self.error} if self.error else {})}

    def to_json(self) -> dict:
        return {"rank": self.rank, "world_size": self.world_size, "seconds": self.seconds, "error": self.error,
                "result": self.result.to_json() if self.result is not None else None,
                "documents": [d.to_json() for d in self.documents]}

    @classmethod
    def from_json(cls, raw: dict, where: str) -> "Shard":
        return cls(rank=int(raw["rank"]), world_size=int(raw["world_size"]), seconds=float(raw["seconds"]),
                   error=raw.get("error"),
                   result=CellResult.from_json(raw["result"], where) if raw.get("result") is not None else None,
                   documents=tuple(DocumentRecord.from_json(d, f"{where}: document {i}")
                                   for i, d in enumerate(raw["documents"])))


def shard_dir(run_dir: Path | str, cell: str) -> Path:
    return Path(run_dir) / results_io.CELLS_DIR / f"{cell}{SHARDS_SUFFIX}"


def shard_path(run_dir: Path | str, cell: str, shard: Shard) -> Path:
    numbers = ",".join(str(d.index) for d in shard.documents)
    digest = hashlib.sha256(numbers.encode()).hexdigest()[:10]
    return shard_dir(run_dir, cell) / f"rank-{shard.rank}-of-{shard.world_size}-{digest}.json"


def write_shard(run_dir: Path | str, cell: str, inputs: dict | None, shard: Shard) -> None:
    """Writes a finished share atomically (failed and empty shares leave nothing to reuse)."""
    if shard.ok and shard.documents:
        results_io.write_json_atomic(shard_path(run_dir, cell, shard),
                                     {"format": SHARD_FORMAT, "cell": cell, "inputs": inputs, **shard.to_json()})


def read_finished(run_dir: Path | str, cell: str, inputs: dict | None) -> list[Shard]:
    """The stored shards of a cell scored from these inputs, in file-name order; unreadable, foreign or
    failed ones are skipped (their documents are scored again)."""
    folder = shard_dir(run_dir, cell)
    if inputs is None or not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("rank-*.json")):
        try:
            raw = read_json(path)
            if not isinstance(raw, dict) or raw.get("format") != SHARD_FORMAT or raw.get("inputs") != inputs:
                continue
            shard = Shard.from_json(raw, str(path))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if shard.ok and shard.result is not None and all(math.isfinite(d.nll) for d in shard.documents):
            found.append(shard)
    return found


def remove_shards(run_dir: Path | str, cell: str) -> None:
    shutil.rmtree(shard_dir(run_dir, cell), ignore_errors=True)


def reused_documents(shards: list[Shard]) -> dict[int, DocumentRecord]:
    """Document number -> record, over stored shards (the first shard holding a document wins)."""
    out: dict[int, DocumentRecord] = {}
    for shard in shards:
        for doc in shard.documents:
            out.setdefault(doc.index, doc)
    return out


def first_failure(shards: list[Shard]) -> Shard | None:
    return next((s for s in shards if not s.ok), None)


def merge(shards: list[Shard], corpus) -> tuple[CellResult, list[DocumentRecord]]:
    """The cell of `corpus` from shards that succeeded and between them cover each document once (stored
    shards first, then this attempt's, whose documents they do not repeat). ValueError when they do not."""
    documents = sorted(reused_documents(shards).values(), key=lambda d: d.index)
    if [d.index for d in documents] != list(range(len(corpus.documents))):
        have = {d.index for d in documents}
        missing = [i for i in range(len(corpus.documents)) if i not in have]
        raise ValueError(f"shards cover {len(documents)} of {len(corpus.documents)} documents"
                         + (f" (document {missing[0]} is missing)" if missing else ""))
    template = next(s.result for s in sorted(shards, key=lambda s: s.rank) if s.result is not None)
    nll = math.fsum(d.nll for d in documents)
    n_bytes = sum(d.bytes for d in documents)
    clean_bytes, clean_words = sum(d.clean_bytes for d in documents), sum(d.clean_words for d in documents)
    tokens = sum(d.tokens for d in documents)
    values, undefined = derived_metrics(nll, n_bytes, clean_bytes, clean_words, tokens)
    values, registered = metric_fields(values)  # a registered metric travels in `extra`
    seconds = max(s.seconds for s in shards)
    devices = sorted({s.result.device for s in shards if s.result is not None and s.result.device})
    result = replace(
        template, corpus=corpus.name, corpus_sha256=corpus.sha256, documents=len(documents), nll=nll,
        bytes=n_bytes, clean_bytes=clean_bytes, clean_words=clean_words, tokens=tokens,
        **values, undefined=undefined, seconds=seconds, bytes_per_second=n_bytes / seconds if seconds > 0 else None,
        device=",".join(devices) or template.device, positions=_positions(documents, template),
        extra={**{k: v for k, v in template.extra.items() if k != "cell"}, **registered})  # `cell` came back
    return result, documents


def _positions(documents: list[DocumentRecord], template: CellResult) -> dict | None:
    if template.positions is None or any(d.positions is None for d in documents):
        return None
    return positions.total(positions.Positions.from_json(d.positions, f"document {d.index}")
                           for d in documents).to_json()
