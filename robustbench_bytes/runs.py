"""The run grid: models x (clean + noise specs) x seeds, scored cell by cell, resumable.

A cell is identified by (model spec, canonical noise, seed) and stored as cells/<key>.json with the
fingerprint of everything that decides its numbers (cell_inputs): every file the model's loader reads,
the corpus, the noise, the seed, the scoring method and dtype, the scoring version. A rerun reuses a
stored cell only when its fingerprint matches and its numbers check out (finite, totals equal to the
sums of its documents); otherwise the cell is scored again. A failed cell is always retried.
results.json is rebuilt after every cell, so a kill at any moment loses at most the cell being scored.

results.json lists the cells of the grid just asked for, in grid order. Cells of earlier grids in
the same directory stay in cells/ and are reused when a later grid asks for them again.

Clean cells carry no randomness: they are scored once, with seed 0, whatever --seed says.

Under torchrun every rank runs the same grid (execute). A cell's documents are split over the ranks by bytes;
each rank writes its shard (shards.py) and rank 0, which alone holds the lock and writes the shared files,
merges them into the same cell file a single process writes. A rerun, with any number of ranks, reuses the
finished cells and the documents of finished shards.
"""

from __future__ import annotations

import hashlib
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from robustbench_bytes import results as results_io
from robustbench_bytes import shards as shards_io
from robustbench_bytes.distributed import World, plan_documents
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import check_output_dir, exclusive_lock
from robustbench_bytes.formatting import format_ppl
from robustbench_bytes.result_schema import CLEAN, CLEAN_SEED, TASKS_DIR, CellResult, DocumentRecord, cell_key
from robustbench_bytes.run_models import ModelCache, ModelUnavailable, describe_error


@dataclass(frozen=True)
class Cell:
    """One cell of the grid: a model spec (as the user named it), a canonical noise spec, a seed."""

    model: str
    noise: str
    seed: int

    @property
    def key(self) -> str:
        return cell_key(self.model, self.noise, self.seed)


def expand_noises(noises: list[str], suite: str | None) -> list[str]:
    """Canonical noise specs, presets expanded, duplicates and `clean` dropped, first-seen order."""
    from robustbench_bytes import noise as noise_lib

    specs: list[str] = []
    if suite is not None:
        if suite not in noise_lib.PRESETS:
            known = ", ".join(sorted(noise_lib.PRESETS))
            raise BadInput(f"suite {suite!r}: no such noise preset (known: {known})")
        specs.extend(noise_lib.expand(suite))
    for spec in noises:
        specs.extend(noise_lib.expand(spec))
    out: list[str] = []
    for spec in specs:
        canonical = noise_lib.canonical(spec)
        if canonical != CLEAN and canonical not in out:
            out.append(canonical)
    return out


def build_grid(models: list[str], noises: list[str], seeds: list[int]) -> list[Cell]:
    """Model-major grid: for each model its clean cell, then every noise x seed."""
    seeds = list(dict.fromkeys(seeds)) or [0]
    cells: list[Cell] = []
    for model in dict.fromkeys(models):
        cells.append(Cell(model, CLEAN, CLEAN_SEED))
        for noise in noises:
            for seed in seeds:
                cells.append(Cell(model, noise, seed))
    return cells


@dataclass
class RunOptions:
    out: Path
    device: str = "cpu"
    batch_size: int = 8
    limit_bytes: int | None = None  # the quick-look limits the corpus was cut with (for the manifest)
    limit_documents: int | None = None
    max_document_bytes: int | None = None
    max_length: int | None = None  # windowed models: window length in tokens (None: the model's context)
    progress: bool = False
    log: Callable[[str], None] | None = None
    command_line: list[str] = field(default_factory=list)
    dtype: str | None = None  # precision.DTYPES; None: auto, the device's default
    world: World = field(default_factory=World)  # this process's rank (distributed.py); one process by default


@dataclass
class RunOutcome:
    results: list[CellResult]
    scored: int = 0
    skipped: int = 0
    failed: int = 0


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """One writer per run directory; the lock dies with the process (kill -9 included)."""
    with exclusive_lock(out / ".lock",
                        busy=lambda: BadInput(f"{out}: another `robustbench run` is writing this run directory")):
        yield


def check_out_dir(out: Path) -> None:
    """A run writes into a missing or empty folder (a killed run's lock and temporaries count as empty), or a
    run directory; never into someone's other folder (files.check_output_dir, the rule of every writer)."""
    check_output_dir(out, results_io.is_run_dir, f"a run directory (no {results_io.RESULTS_FILE})")


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


def texts_sha256(texts: list[str]) -> str:
    """The sha256 of a list of texts, as a corpus's (corpus.Corpus.sha256)."""
    from robustbench_bytes.corpus import Corpus

    return Corpus("", list(texts)).sha256


_PROBE = ("The quick brown fox jumps over the lazy dog, 1234567890 times. Ça coûte 5 €; naïve café — "
          "ünïcödé, 日本語のテキスト, emoji 🦉.\n") * 8


def noise_code_sha256(spec: str, seed: int) -> str:
    """A fingerprint of the code behind a noise spec, for cells whose noised text is not known before scoring
    (lm-eval's): the sha256 of the source files of each part's transform and of the spec applied to a probe text."""
    import inspect

    from robustbench_bytes import noise as noise_lib

    h = hashlib.sha256(noise_lib.apply(_PROBE, spec, seed=seed).encode("utf-8", "surrogatepass"))
    for part in noise_lib.parse(spec):
        try:
            source = inspect.getsourcefile(inspect.unwrap(part.noise.transform))  # a plug-in's, not its guard's
            h.update(Path(source).read_bytes() if source else b"")
        except (OSError, TypeError):  # a transform without a source file: the probe alone stands for it
            pass
    return h.hexdigest()


def expected_documents(corpus, texts: list[str]) -> list[dict]:
    """What each document record of a cell must say of its sizes: its noised and clean UTF-8 bytes and clean
    words (CONTRACT.md's definitions)."""
    return [{"index": i, "bytes": len(text.encode("utf-8")), "clean_bytes": len(doc.encode("utf-8")),
             "clean_words": len(doc.split())} for i, (doc, text) in enumerate(zip(corpus.documents, texts))]


def check_model_specs(specs: list[str]) -> None:
    """Fail fast (exit 2) on a model that names nothing; corrupt checkpoints fail their cells later."""
    from robustbench_bytes.models import source_for

    for spec in specs:
        source_for(spec)


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
                                      progress=options.progress and world.is_main, desc=desc,
                                      max_length=options.max_length, indices=share, dtype=options.dtype)
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


def remove_stale_temporaries(out: Path, also: list[Path] = ()) -> None:
    """Temporary files a killed writer left behind in a run directory, of perplexity or task cells, and in the
    folders `also` (we hold the lock, so nobody is writing them)."""
    cells = out / results_io.CELLS_DIR
    folders = [out, cells, out / TASKS_DIR, *also] + (sorted(cells.glob(f"*{shards_io.SHARDS_SUFFIX}"))
                                                      if cells.is_dir() else [])
    for folder in folders:
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                path.unlink(missing_ok=True)


def reusable(stored, inputs: dict | None, key: str, labels: dict, records: list[dict] | None = None) -> bool:
    """A stored cell (a perplexity or task cell record) that was scored from the same inputs, whose numbers follow
    from its records and whose labels are those of its key, inputs, `labels` (result field -> value) and
    `records` (results.verified_problem)."""
    return (inputs is not None and stored is not None and stored.inputs == inputs and stored.result.ok
            and stored.problem(key=key, labels=labels, records=records) is None)


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


@contextmanager
def _lock_on_rank0(out: Path, world: World) -> Iterator[None]:
    """Rank 0 checks the folder, takes the run lock and clears stale temporaries; every rank learns whether it
    could (a refusal is the same one-line error on every rank)."""
    with ExitStack() as stack:
        def take() -> bool:
            check_out_dir(out)
            stack.enter_context(run_lock(out))
            remove_stale_temporaries(out)
            return True

        world.broadcast(take, "taking the run lock")
        yield


def execute(grid: list[Cell], corpus, options: RunOptions) -> RunOutcome:
    """Score every cell of the grid that is not already stored with the same inputs.

    One process is the world-size-1 case of a torchrun run: for each cell rank 0 decides (reuse the stored
    cell, or which documents are left after the stored shards, split by distributed.plan_documents), every
    rank scores its share and writes its shard, and rank 0 merges the shards into the cell file and
    results.json. Only rank 0 writes shared files."""
    import torch

    from robustbench_bytes import precision, provenance, scoring

    out, world = Path(options.out), options.world
    log = (options.log if world.is_main else None) or (lambda message: None)
    models = ModelCache(options.device)
    described: dict[str, dict] = {}
    finished: dict[str, CellResult] = {}
    ranks: dict[str, dict] = {}  # cell -> what each rank did (manifest)
    outcome = RunOutcome(results=[])
    started = provenance.now()
    requested = {"chunk_size": scoring.DEFAULT_CHUNK_SIZE, "context": None, "stride": None,
                 "max_length": options.max_length,
                 "dtype": precision.label(torch.device(options.device), options.dtype)}
    sizes = [len(d.encode("utf-8")) for d in corpus.documents]
    kept: dict[str, list[shards_io.Shard]] = {}  # rank 0: stored shards of the cell being scored
    world.check_same_plan(run_plan(grid, corpus, options, models, requested))  # before any file or score

    def write_results():
        outcome.results = [finished[c.key] for c in grid if c.key in finished]
        results_io.write_results(out, outcome.results)

    def write_manifest(done: str | None):
        manifest = provenance.build_manifest(grid, corpus, options, scoring.SCORING_VERSION, described, started,
                                             done)
        manifest["distributed"] = {**world.describe(), "cells": ranks}
        results_io.write_json_atomic(out / results_io.MANIFEST_FILE, manifest)

    def decide(cell: Cell) -> dict:
        if cell.model not in described:
            described[cell.model] = models.describe(cell.model)
            write_manifest(None)
        fingerprint = described[cell.model].get("model_fingerprint")
        texts = noised_documents(corpus, cell.noise, cell.seed)
        inputs = (cell_inputs(cell, fingerprint, corpus.sha256, requested, texts_sha256(texts)) if fingerprint
                  else None)
        stored = results_io.read_cell(out, cell.key)
        labels = {"corpus": corpus.name, "documents": len(corpus.documents), "corpus_sha256": corpus.sha256}
        if reusable(stored, inputs, cell.key, labels, expected_documents(corpus, texts)):
            finished[cell.key] = stored.result
            return {"reuse": True}
        kept[cell.key] = shards_io.read_finished(out, cell.key, inputs)
        done = shards_io.reused_documents(kept[cell.key])
        left = [i for i in range(len(sizes)) if i not in done]
        return {"reuse": False, "inputs": inputs, "reused": len(done),
                "plan": plan_documents(sizes, world.world_size, left)}

    from robustbench_bytes.progress import progress_bar

    # the whole grid: cells done and an ETA, the per-cell bar of scoring.py drawn under it
    cells_bar = progress_bar(options.progress and world.is_main, total=len(grid), desc="cells", unit="cell")
    if not cells_bar.disable:
        log = lambda message: cells_bar.write(message, file=sys.stderr)  # noqa: E731 (lines above the bars)
    with _lock_on_rank0(out, world), cells_bar:
        if world.is_main:
            write_manifest(None)
        for number, cell in enumerate(grid, start=1):
            label = f"[{number}/{len(grid)}] {cell.model} | {cell.noise} | seed {cell.seed}"
            t0 = time.perf_counter()
            decision = world.broadcast(lambda: decide(cell), f"planning cell {number} ({cell.key})")
            if decision["reuse"]:
                outcome.skipped += 1
                cells_bar.update()
                log(f"{label}: done before, skipped")
                continue
            mine = score_share(models, cell, corpus, decision["plan"][world.rank], options, label)
            shards_io.write_shard(out, cell.key, decision["inputs"], mine)
            scored = [shards_io.Shard.from_json(raw, f"rank {k}") for k, raw in
                      enumerate(world.all_gather(mine.to_json(), f"scoring cell {number} ({cell.key})"))]
            if world.is_main:
                result = _write_cell(out, cell, corpus, decision, kept.pop(cell.key), scored, world.world_size)
                finished[cell.key] = result
                write_results()
                ranks[cell.key] = _rank_log(decision, scored, time.perf_counter() - t0)
                write_manifest(None)
                log(_cell_line(label, result, time.perf_counter() - t0, world.world_size, decision["reused"]))
                ok = result.ok
            else:
                ok = shards_io.first_failure(scored) is None
            outcome.scored += ok
            outcome.failed += not ok
            cells_bar.update()
        if world.is_main:
            write_results()
            write_manifest(provenance.now())
    return outcome


def _cell_line(label: str, result: CellResult, seconds: float, world_size: int, reused: int) -> str:
    if not result.ok:
        return f"{label}: FAILED: {result.error}"
    notes = [f"{seconds:.1f} s"] + ([f"{world_size} ranks"] if world_size > 1 else []) + (
        [f"{reused} documents from stored shards"] if reused else [])
    return (f"{label}: {result.bits_per_clean_byte:.4f} bits/clean byte ({result.bits_per_byte:.4f} bits/byte), "
            f"word-PPL {format_ppl(result.word_perplexity)} "
            f"({', '.join(notes)})")


def _write_cell(out: Path, cell: Cell, corpus, decision: dict, stored: list[shards_io.Shard],
                scored: list[shards_io.Shard], world_size: int) -> CellResult:
    """Rank 0: merge, write the cell file, drop its shards once the cell holds them."""
    result, documents = merge_cell(cell, corpus, stored, scored, world_size)
    inputs = decision["inputs"]
    if result.ok and inputs and result.model_fingerprint != inputs["model_fingerprint"]:
        inputs = {**inputs, "model_fingerprint": result.model_fingerprint}  # a file changed while the run went on
    results_io.write_cell(out, results_io.CellRecord(inputs, result, tuple(documents)))
    if result.ok:
        shards_io.remove_shards(out, cell.key)
    return result


def _rank_log(decision: dict, scored: list[shards_io.Shard], seconds: float) -> dict:
    """What the manifest records of one scored cell: wall seconds on rank 0, and per rank its documents, bytes
    and scoring seconds."""
    return {"seconds": seconds, "reused_documents": decision["reused"],
            "ranks": [{"rank": s.rank, "documents": len(s.documents), "bytes": sum(d.bytes for d in s.documents),
                       "seconds": s.seconds, "device": s.result.device if s.result else None,
                       **({"error": s.error} if s.error else {})} for s in scored]}
