"""The one resumable grid executor: every kind of cell (perplexity, multiple-choice task, lm-eval) is planned, reused,
scored, stored, listed and recorded by execute(); a kind (CellKind) says only what is its own.

The rules, the same for every kind:
- plan: the grid is a list of cells, each with a `key` (its file name) and a `model` spec; under torchrun every rank
  runs the same plan (distributed.World.check_same_plan) before any file is touched or any cell scored;
- reuse: a stored cell is reused only when it was scored from the same inputs (kind.inputs: the fingerprint of
  everything that decides its numbers) and its record checks out (kind.problem: results.verified_problem of its
  numbers against its records and labels); anything else is scored again;
- failure: a cell that cannot be scored (its model does not load, an exception, a non-finite score) fails alone:
  it is recorded as failed (the kind decides whether a failed cell leaves a file) and the run goes on; the
  outcome counts it and the command exits 1;
- files: one writer per run directory (run_lock), the kind's list file (results.json, tasks.json, lm_eval.json)
  rewritten atomically after each finished cell in grid order, the kind's manifest at the start, whenever a model
  is described or a cell finishes, and at the end; without a run directory (options.out None: `robustbench
  score`) nothing is read or written;
- ranks: a kind that is `shardable` splits each cell over the ranks (kind.shares; the perplexity kind by
  document), every rank scores its share, rank 0 gathers the parts and alone writes files. A kind that is not
  shardable refuses more than one rank with one line (open_world) before any process group is set up.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from robustbench_bytes import results as results_io
from robustbench_bytes.runs.distributed import DEFAULT_TIMEOUT_S, World
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import check_output_dir, exclusive_lock
from robustbench_bytes.runs.models import ModelCache


@dataclass
class GridOptions:
    """What every kind of grid is run with. out None: a grid without a run directory (nothing read or written)."""

    out: Path | None
    device: str = "cpu"
    batch_size: int = 8
    progress: bool = False
    log: Callable[[str], None] | None = None
    command_line: list[str] = field(default_factory=list)
    world: World = field(default_factory=World)  # this process's rank (distributed.py); one process by default


@dataclass
class Outcome:
    """What a grid did: its cells' results in grid order (rank 0), and how many were scored, reused, failed."""

    results: list = field(default_factory=list)
    records: list = field(default_factory=list)  # each cell's stored record (kind-specific), in grid order
    summary: list = field(default_factory=list)  # what the kind's close() returned (the task grid's noise averages)
    scored: int = 0
    skipped: int = 0
    failed: int = 0


class CellKind(Protocol):
    """What a kind of cell knows of itself; execute() does the rest."""

    name: str  # in messages: "perplexity", "task", "lm-eval"
    list_file: str  # relative to the run directory
    manifest_file: str  # relative to the run directory
    shardable: bool

    def plan(self, grid: list, models: ModelCache) -> dict: ...  # what every rank must agree on
    def describe(self, cell) -> str: ...  # the cell in a log line (after "[n/N] ")
    def inputs(self, cell, model: dict) -> dict | None: ...  # model: ModelCache.describe; None: cannot be scored
    def stored(self, out: Path, cell): ...  # the stored record or None
    def problem(self, record, cell) -> str | None: ...  # why a stored record of the same inputs cannot be reused
    def shares(self, out: Path | None, cell, inputs: dict | None, world_size: int) -> dict: ...
    def score(self, models: ModelCache, cell, inputs: dict | None, share, desc: str): ...
    # ^ this rank's part of the cell; never raises (but KeyboardInterrupt): a cell that cannot be scored is a part
    #   that carries its failure, with the model's identity where it loaded
    def keep(self, out: Path, cell, inputs: dict | None, part) -> None: ...  # a part worth keeping if killed
    def part_json(self, part) -> dict: ...
    def part_from_json(self, raw: dict, where: str): ...
    def finish(self, out: Path | None, cell, decision: dict, parts: list, world_size: int): ...  # -> record
    def write(self, out: Path, record) -> None: ...
    def line(self, record, seconds: float, decision: dict, world_size: int) -> str: ...
    def listing(self, records: list) -> list: ...  # the list file's JSON list
    def manifest(self, grid: list, options: GridOptions, described: dict, started: str, finished: str | None,
                 ranks: dict) -> dict: ...
    def close(self, out: Path, records: list) -> list: ...  # after the last cell (rank 0, with a run directory)


def check_out_dir(out: Path) -> None:
    """A grid writes into a missing or empty folder (a killed run's lock and temporaries count as empty), or a
    run directory; never into someone's other folder (files.check_output_dir, the rule of every writer)."""
    check_output_dir(out, results_io.is_run_dir, f"a run directory (no {results_io.RESULTS_FILE})")


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """One writer per run directory; the lock dies with the process (kill -9 included)."""
    with exclusive_lock(out / ".lock",
                        busy=lambda: BadInput(f"{out}: another `robustbench run` is writing this run directory")):
        yield


# the folders of a run directory a killed writer may have left temporaries in (besides the shard folders)
CELL_FOLDERS = (results_io.CELLS_DIR, "tasks", "lm_eval")


def remove_stale_temporaries(out: Path) -> None:
    """Temporary files a killed writer left behind in a run directory, its cell folders and the perplexity cells'
    shard folders (we hold the lock, so nobody is writing them)."""
    folders = [out] + [out / name for name in CELL_FOLDERS]
    cells = out / results_io.CELLS_DIR
    folders += sorted(p for p in cells.glob("*.shards")) if cells.is_dir() else []
    for folder in folders:
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                path.unlink(missing_ok=True)


def open_world(shardable: bool, device: str, what: str, timeout: float = DEFAULT_TIMEOUT_S) -> tuple[World, str]:
    """(this process's World, its device) for a grid of one kind: a kind that is not split over ranks refuses a
    launch of several processes with one line, before any process group is set up."""
    from robustbench_bytes.runs import distributed

    if not shardable and distributed.launched_world_size() > 1:
        raise BadInput(f"WORLD_SIZE={distributed.launched_world_size()}: {what} are not split over ranks; run them in "
                       f"one process (without torchrun)")
    return distributed.from_environment(device, timeout=timeout)


@contextmanager
def _lock_on_rank0(out: Path | None, world: World) -> Iterator[None]:
    """Rank 0 checks the folder, takes the run lock and clears stale temporaries; every rank learns whether it
    could (a refusal is the same one-line error on every rank). Nothing without a run directory."""
    if out is None:
        yield
        return
    with ExitStack() as stack:
        def take() -> bool:
            check_out_dir(out)
            stack.enter_context(run_lock(out))
            remove_stale_temporaries(out)
            return True

        world.broadcast(take, "taking the run lock")
        yield


def _gather(kind: CellKind, world: World, part, what: str) -> list:
    """Every rank's part, in rank order (the part itself when there is one rank)."""
    if not world.distributed:
        return [part]
    return [kind.part_from_json(raw, f"rank {k}")
            for k, raw in enumerate(world.all_gather(kind.part_json(part), what))]


def execute(kind: CellKind, grid: list, options: GridOptions, models: ModelCache | None = None) -> Outcome:
    """Score every cell of the grid that is not already stored with the same inputs (see the module's rules)."""
    out = Path(options.out) if options.out is not None else None
    world = options.world
    if world.distributed and not kind.shardable:
        raise BadInput(f"{kind.name} cells are not split over ranks; run them in one process (without torchrun)")
    log = (options.log if world.is_main else None) or (lambda message: None)
    models = models or ModelCache(options.device)
    described: dict[str, dict] = {}
    finished: dict[str, Any] = {}  # key -> record
    ranks: dict[str, dict] = {}  # key -> what each rank did (the manifest)
    outcome = Outcome()
    from robustbench_bytes.results import provenance
    from robustbench_bytes.progress import progress_bar

    started = provenance.now()
    writes = out is not None and world.is_main
    world.check_same_plan(kind.plan(grid, models))  # before any file or score

    def write_list():
        outcome.records = [finished[c.key] for c in grid if c.key in finished]
        outcome.results = [r.result for r in outcome.records]
        if writes:
            results_io.write_json_atomic(out / kind.list_file, kind.listing(outcome.records))

    def write_manifest(done: str | None):
        if writes:
            results_io.write_json_atomic(out / kind.manifest_file,
                                         kind.manifest(grid, options, described, started, done, ranks))

    def decide(cell) -> dict:
        if cell.model not in described:
            described[cell.model] = models.describe(cell.model)
            write_manifest(None)
        if out is None:  # nothing stored, nothing to store: no fingerprint to take
            return {"reuse": False, "inputs": None, **kind.shares(out, cell, None, world.world_size)}
        inputs = kind.inputs(cell, described[cell.model])
        stored = kind.stored(out, cell)
        if (stored is not None and inputs is not None and stored.inputs == inputs
                and kind.problem(stored, cell) is None):
            finished[cell.key] = stored
            return {"reuse": True}
        return {"reuse": False, "inputs": inputs, **kind.shares(out, cell, inputs, world.world_size)}

    # the whole grid: cells done and an ETA, the per-cell bar of the scorer drawn under it
    cells_bar = progress_bar(options.progress and world.is_main and len(grid) > 1, total=len(grid), desc="cells",
                             unit="cell")
    if not cells_bar.disable:
        log = lambda message: cells_bar.write(message, file=sys.stderr)  # noqa: E731 (lines above the bars)
    with _lock_on_rank0(out, world), cells_bar if not cells_bar.disable else nullcontext():
        write_manifest(None)
        for number, cell in enumerate(grid, start=1):
            label = f"[{number}/{len(grid)}] {kind.describe(cell)}"
            t0 = time.perf_counter()
            decision = world.broadcast(lambda: decide(cell), f"planning cell {number} ({cell.key})")
            if decision["reuse"]:
                outcome.skipped += 1
                cells_bar.update()
                log(f"{label}: done before, skipped")
                continue
            mine = kind.score(models, cell, decision["inputs"], decision["plan"][world.rank], label)
            if out is not None:
                kind.keep(out, cell, decision["inputs"], mine)
            parts = _gather(kind, world, mine, f"scoring cell {number} ({cell.key})")
            if world.is_main:
                record = kind.finish(out, cell, decision, parts, world.world_size)
                if out is not None:
                    kind.write(out, record)
                finished[cell.key] = record
                write_list()
                ranks[cell.key] = _rank_log(decision, parts, time.perf_counter() - t0)
                write_manifest(None)
                log(f"{label}: {kind.line(record, time.perf_counter() - t0, decision, world.world_size)}")
                ok = record.result.ok
            else:
                ok = all(getattr(p, "ok", True) for p in parts)
            outcome.scored += ok
            outcome.failed += not ok
            cells_bar.update()
        if world.is_main:
            write_list()
            if writes:
                outcome.summary = kind.close(out, outcome.records)
            write_manifest(provenance.now())
    return outcome


def _rank_log(decision: dict, parts: list, seconds: float) -> dict:
    """What the manifest may record of one scored cell: wall seconds on rank 0, and per rank what its part says of
    itself (part.log(): documents, bytes, seconds, device)."""
    return {"seconds": seconds, "reused_documents": decision.get("reused", 0),
            "ranks": [p.log() if hasattr(p, "log") else {} for p in parts]}


def single_share(world_size: int) -> dict:
    """The plan of a kind that scores a cell whole, on rank 0."""
    return {"plan": [None] * world_size, "reused": 0}
