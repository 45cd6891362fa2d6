"""The run grid: models x (clean + noise specs) x seeds, scored cell by cell, resumable.

A cell (plan.py's Cell) is identified by (model spec, canonical noise, seed) and stored as cells/<key>.json
with the fingerprint of everything that decides its numbers (cell_inputs): every file the model's loader reads,
the corpus, the noise, the seed, the scoring method and dtype, the scoring version. A rerun reuses a
stored cell only when its fingerprint matches and its numbers check out (finite, totals equal to the
sums of its documents); otherwise the cell is scored again. A failed cell is always retried.
results.json is rebuilt after every cell, so a kill at any moment loses at most the cell being scored.

results.json lists the cells of the grid just asked for, in grid order. Cells of earlier grids in
the same directory stay in cells/ and are reused when a later grid asks for them again.

Clean cells carry no randomness: they are scored once, with seed 0, whatever --seed says.

The executor is grid.py's (the rules of every kind of cell); this module is the perplexity kind (PerplexityCells).
Under torchrun every rank runs the same grid (execute). A cell's documents are split over the ranks by bytes;
each rank writes its shard (shards.py) and rank 0, which alone holds the lock and writes the shared files,
merges them into the same cell file a single process writes. A rerun, with any number of ranks, reuses the
finished cells and the documents of finished shards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from robustbench_bytes import results as results_io
from robustbench_bytes.formatting import format_ppl
from robustbench_bytes.results import shards as shards_io
from robustbench_bytes.results.schema import CLEAN, CellResult, DocumentRecord
from robustbench_bytes.runs.shares import plan_documents
from robustbench_bytes.runs.fingerprint import texts_sha256
from robustbench_bytes.runs.grid import GridOptions, Outcome
from robustbench_bytes.runs.grid import execute as execute_grid
from robustbench_bytes.runs.models import ModelCache, ModelUnavailable, describe_error
from robustbench_bytes.runs.plan import Cell, build_grid, check_model_specs, expand_noises

__all__ = ["Cell", "PerplexityCells", "RunOptions", "RunOutcome", "build_grid", "check_model_specs", "execute",
           "expand_noises", "score_share", "scoring_kwargs"]


@dataclass
class RunOptions(GridOptions):
    limit_bytes: int | None = None  # the quick-look limits the corpus was cut with (for the manifest)
    limit_documents: int | None = None
    max_document_bytes: int | None = None
    max_length: int | None = None  # windowed models: window length in tokens (None: the model's context)
    dtype: str | None = None  # precision.DTYPES; None: auto, the device's default
    chunk_size: int | None = None  # `score`'s scoring options (None: scoring's defaults); `run` keeps the defaults
    context: int | None = None
    stride: int | None = None


RunOutcome = Outcome


def cell_inputs(cell: Cell, model_fingerprint: str, corpus_sha256: str, method: dict,
                noised_sha256: str | None = None) -> dict:
    """Everything that decides a cell's numbers; a stored cell is reused only when this matches. A noised cell
    also carries the sha256 of its noised documents (noised_sha256), so that a change in the code of a noise
    (a plug-in's, say) that changes its output rescores the cell; clean cells are the corpus itself."""
    from robustbench_bytes import scoring

    return {
        "model": cell.model,
        "model_fingerprint": model_fingerprint,
        "corpus_sha256": corpus_sha256,
        "noise": cell.noise,
        "seed": cell.seed,
        "scoring": method,
        "scoring_version": scoring.SCORING_VERSION,
        **({"noised_sha256": noised_sha256} if noised_sha256 is not None and cell.noise != CLEAN else {}),
    }


def noised_documents(corpus, noise: str, seed: int) -> list[str]:
    """The documents of `corpus` as a cell under `noise` scores them (document i noised with stream i)."""
    if noise == CLEAN:
        return list(corpus.documents)
    from robustbench_bytes import noise as noise_lib

    return noise_lib.apply_corpus(corpus.documents, noise, seed=seed)


def expected_documents(corpus, texts: list[str]) -> list[dict]:
    """What each document record of a cell must say of its sizes: its noised and clean UTF-8 bytes and clean
    words (CONTRACT.md's definitions)."""
    return [{"index": i, "bytes": len(text.encode("utf-8")), "clean_bytes": len(doc.encode("utf-8")),
             "clean_words": len(doc.split())} for i, (doc, text) in enumerate(zip(corpus.documents, texts))]


def score_share(models: ModelCache, cell: Cell, corpus, share: list[int], options: RunOptions,
                desc: str) -> shards_io.Shard:
    """This rank's share of one cell: the documents numbered `share` of `corpus`, scored with their numbers in
    the whole corpus (so each gets its own noise stream whatever rank scores it). A model that cannot be loaded,
    an exception or a non-finite NLL becomes a failed shard carrying the failed cell."""
    from robustbench_bytes import scoring

    world = options.world
    if not share:
        return shards_io.Shard(world.rank, world.world_size)

    def failed(error: str, model=None) -> shards_io.Shard:
        result = CellResult.failed(model_spec=cell.model, model=model.name if model else None, noise=cell.noise,
                                   seed=cell.seed, corpus=corpus, error=error,
                                   **({"model_fingerprint": model.fingerprint} if model else {}))
        return shards_io.Shard(world.rank, world.world_size, result=result, error=error)

    try:
        model = models.get(cell.model)
    except ModelUnavailable as e:
        return failed(f"cannot load model: {e}")
    ids = list(corpus.doc_ids) or [str(i) for i in range(len(corpus.documents))]
    part = replace(corpus, documents=[corpus.documents[i] for i in share], doc_ids=[ids[i] for i in share])
    try:
        scored = scoring.score_corpus(model, part, noise=cell.noise, seed=cell.seed, batch_size=options.batch_size,
                                      progress=options.progress and world.is_main, desc=desc, indices=share,
                                      dtype=options.dtype, **scoring_kwargs(options))
    except KeyboardInterrupt:
        raise
    except Exception as e:
        return failed(describe_error(e), model)
    return shards_io.Shard(world.rank, world.world_size, tuple(scored.documents), scored.result,
                           seconds=scored.result.seconds)


def merge_cell(cell: Cell, corpus, stored: list[shards_io.Shard], scored: list[shards_io.Shard],
               world_size: int) -> tuple[CellResult, list[DocumentRecord]]:
    """The cell from the shards reused from disk and this attempt's (one per rank): failed with the first
    failing rank's reason (named when there are several ranks), else their documents merged."""
    failure = shards_io.first_failure(scored)
    if failure is not None:
        error = failure.error if world_size == 1 else f"rank {failure.rank}: {failure.error}"
        return failure.result.as_failed(error), []
    try:
        return shards_io.merge(stored + scored, corpus)
    except ValueError as e:
        return CellResult.failed(model_spec=cell.model, model=None, noise=cell.noise, seed=cell.seed, corpus=corpus,
                                 error=f"merging the ranks' shards: {e}"), []


def run_plan(grid: list[Cell], corpus, options: RunOptions, models: ModelCache, requested: dict) -> dict:
    """What every rank of one run must agree on (distributed.World.check_same_plan), in the order a difference
    is reported: versions, the grid (models, noises, seeds, cells), the corpus (sha256, size, quick-look limits),
    each model's fingerprint (every file its loader reads), and the scoring options that change numbers."""
    from robustbench_bytes import __version__, scoring

    return {
        "robustbench_bytes_version": __version__,
        "scoring_version": scoring.SCORING_VERSION,
        "models": list(dict.fromkeys(c.model for c in grid)),
        "noises": list(dict.fromkeys(c.noise for c in grid)),
        "seeds": sorted({c.seed for c in grid}),
        "cells": [c.key for c in grid],
        "corpus": {"name": corpus.name, "sha256": corpus.sha256, "documents": len(corpus.documents),
                   "bytes": corpus.bytes, "limit_bytes": options.limit_bytes,
                   "limit_documents": options.limit_documents, "max_document_bytes": options.max_document_bytes},
        "model_fingerprints": {m: models.describe(m).get("model_fingerprint") or models.describe(m).get("error")
                               for m in dict.fromkeys(c.model for c in grid)},
        "scoring": requested,
        "batch_size": options.batch_size,
    }


def scoring_kwargs(options: RunOptions) -> dict:
    """The scoring method's options as scoring.score_corpus takes them (scoring's defaults where not given)."""
    from robustbench_bytes import scoring

    return {"chunk_size": options.chunk_size or scoring.DEFAULT_CHUNK_SIZE, "context": options.context,
            "stride": options.stride, "max_length": options.max_length}


class PerplexityCells:
    """Perplexity cells (grid.CellKind): one model on one corpus under one noise and seed, split over the ranks by
    document (each rank's share stored as a shard, shards.py), stored as cells/<key>.json and listed in
    results.json, the grid recorded in manifest.json."""

    name = "perplexity"
    list_file = results_io.RESULTS_FILE
    manifest_file = results_io.MANIFEST_FILE
    shardable = True

    def __init__(self, corpus, options: RunOptions):
        import torch

        from robustbench_bytes.scoring import precision

        self.corpus, self.options = corpus, options
        self.requested = {**scoring_kwargs(options),
                          "dtype": precision.label(torch.device(options.device), options.dtype)}
        self.requested = {k: self.requested[k] for k in ("chunk_size", "context", "stride", "max_length", "dtype")}
        self.sizes = [len(d.encode("utf-8")) for d in corpus.documents]
        self._kept: dict[str, list[shards_io.Shard]] = {}  # rank 0: stored shards of the cell being scored
        self._texts: dict[str, list[str]] = {}  # rank 0: the noised documents of the cell being decided

    def plan(self, grid: list[Cell], models: ModelCache) -> dict:
        return run_plan(grid, self.corpus, self.options, models, self.requested)

    def describe(self, cell: Cell) -> str:
        return f"{cell.model} | {cell.noise} | seed {cell.seed}"

    def inputs(self, cell: Cell, model: dict) -> dict | None:
        fingerprint = model.get("model_fingerprint")
        texts = self._texts[cell.key] = noised_documents(self.corpus, cell.noise, cell.seed)
        return cell_inputs(cell, fingerprint, self.corpus.sha256, self.requested, texts_sha256(texts)) \
            if fingerprint else None

    def stored(self, out: Path, cell: Cell):
        return results_io.read_cell(out, cell.key)

    def problem(self, record, cell: Cell) -> str | None:
        corpus = self.corpus
        labels = {"corpus": corpus.name, "documents": len(corpus.documents), "corpus_sha256": corpus.sha256}
        texts = self._texts.pop(cell.key, None) or noised_documents(corpus, cell.noise, cell.seed)
        return "it failed" if not record.result.ok else record.problem(key=cell.key, labels=labels,
                                                                        records=expected_documents(corpus, texts))

    def shares(self, out: Path | None, cell: Cell, inputs: dict | None, world_size: int) -> dict:
        """Rank 0: the documents left after the stored shards, split over the ranks by bytes."""
        self._texts.pop(cell.key, None)
        kept = self._kept[cell.key] = shards_io.read_finished(out, cell.key, inputs) if out is not None else []
        done = shards_io.reused_documents(kept)
        left = [i for i in range(len(self.sizes)) if i not in done]
        return {"reused": len(done), "plan": plan_documents(self.sizes, world_size, left)}

    def score(self, models: ModelCache, cell: Cell, inputs: dict | None, share: list[int], desc: str):
        return score_share(models, cell, self.corpus, share, self.options, desc)

    def keep(self, out: Path, cell: Cell, inputs: dict | None, part: shards_io.Shard) -> None:
        shards_io.write_shard(out, cell.key, inputs, part)

    def part_json(self, part: shards_io.Shard) -> dict:
        return part.to_json()

    def part_from_json(self, raw: dict, where: str) -> shards_io.Shard:
        return shards_io.Shard.from_json(raw, where)

    def finish(self, out: Path | None, cell: Cell, decision: dict, parts: list, world_size: int):
        """Rank 0: the cell from the stored shards and this attempt's; its shards go once the cell holds them."""
        result, documents = merge_cell(cell, self.corpus, self._kept.pop(cell.key, []), parts, world_size)
        inputs = decision["inputs"]
        if result.ok and inputs and result.model_fingerprint != inputs["model_fingerprint"]:
            inputs = {**inputs, "model_fingerprint": result.model_fingerprint}  # a file changed during the run
        return results_io.CellRecord(inputs, result, tuple(documents))

    def write(self, out: Path, record: results_io.CellRecord) -> None:
        results_io.write_cell(out, record)
        if record.result.ok:
            shards_io.remove_shards(out, record.result.cell)

    def line(self, record, seconds: float, decision: dict, world_size: int) -> str:
        result, reused = record.result, decision.get("reused", 0)
        if not result.ok:
            return f"FAILED: {result.error}"
        notes = [f"{seconds:.1f} s"] + ([f"{world_size} ranks"] if world_size > 1 else []) + (
            [f"{reused} documents from stored shards"] if reused else [])
        return (f"{result.bits_per_clean_byte:.4f} bits/clean byte ({result.bits_per_byte:.4f} bits/byte), "
                f"word-PPL {format_ppl(result.word_perplexity)} ({', '.join(notes)})")

    def listing(self, records: list) -> list:
        return [r.result.to_json() for r in records]

    def manifest(self, grid, options, described, started, finished, ranks) -> dict:
        from robustbench_bytes import scoring
        from robustbench_bytes.results import provenance

        manifest = provenance.build_manifest(grid, self.corpus, options, scoring.SCORING_VERSION, described,
                                             started, finished)
        return {**manifest, "distributed": {**options.world.describe(), "cells": ranks}}

    def close(self, out: Path, records: list) -> list:
        return []


def execute(grid: list[Cell], corpus, options: RunOptions) -> Outcome:
    """Score every perplexity cell of the grid not already stored with the same inputs (grid.execute)."""
    return execute_grid(PerplexityCells(corpus, options), grid, options)
