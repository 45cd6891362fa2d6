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
"""

from __future__ import annotations

import fcntl
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from robustbench_bytes import results as results_io
from robustbench_bytes.errors import BadInput
from robustbench_bytes.formatting import format_ppl
from robustbench_bytes.result_schema import CLEAN, CLEAN_SEED, CellResult, cell_key, check_consistent



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
    limit_bytes: int | None = None
    max_length: int | None = None  # windowed models: window length in tokens (None: the model's context)
    progress: bool = False
    log: Callable[[str], None] | None = None
    command_line: list[str] = field(default_factory=list)


@dataclass
class RunOutcome:
    results: list[CellResult]
    scored: int = 0
    skipped: int = 0
    failed: int = 0


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """One writer per run directory; the lock dies with the process (kill -9 included)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInput(f"{out}: another `robustbench run` is writing this run directory") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_out_dir(out: Path) -> None:
    """A run writes into a missing or empty folder, or a run directory; never into someone's other folder."""
    if not out.exists():
        return
    if not out.is_dir():
        raise BadInput(f"{out}: exists and is not a directory")
    if results_io.is_run_dir(out) or not any(p for p in out.iterdir() if p.name != ".lock"):
        return
    raise BadInput(f"{out}: a folder that is not empty and not a run directory (no "
                   f"{results_io.RESULTS_FILE}); choose another output folder")


def cell_inputs(cell: Cell, model_fingerprint: str, corpus_sha256: str, method: dict) -> dict:
    """Everything that decides a cell's numbers; a stored cell is reused only when this matches."""
    from robustbench_bytes import scoring

    return {
        "model": cell.model,
        "model_fingerprint": model_fingerprint,
        "corpus_sha256": corpus_sha256,
        "noise": cell.noise,
        "seed": cell.seed,
        "scoring": method,
        "scoring_version": scoring.SCORING_VERSION,
    }


class _Models:
    """Resolves each model spec once (its fingerprint, without loading), and loads each model at most once,
    when its first cell needs scoring; keeps one in memory at a time (the grid is model-major)."""

    def __init__(self, device: str):
        self.device = device
        self._resolved: dict[str, object] = {}
        self._loaded: dict[str, object] = {}
        self._errors: dict[str, str] = {}

    def describe(self, spec: str) -> dict:
        """What the manifest records of a model: fingerprint and file hashes, or why it cannot be used."""
        resolved = self.resolve(spec)
        if resolved is None:
            return {"error": self._errors[spec]}
        return {"model_fingerprint": resolved.fingerprint(), "checkpoint_sha256": resolved.weights_sha256(),
                "files": resolved.file_hashes()}

    def resolve(self, spec: str):
        if spec not in self._resolved and spec not in self._errors:
            from robustbench_bytes.models import resolve_model

            try:
                self._resolved[spec] = resolve_model(spec)
            except Exception as e:  # a broken checkpoint fails its cells, not the whole run
                self._errors[spec] = describe_error(e)
        return self._resolved.get(spec)

    def get(self, spec: str):
        if spec in self._errors:
            raise _ModelUnavailable(self._errors[spec])
        if spec not in self._loaded:
            from robustbench_bytes.models import load_model

            self._loaded.clear()
            try:
                self._loaded[spec] = load_model(spec, device=self.device)
            except Exception as e:  # a corrupt checkpoint fails its cells, not the whole run
                self._errors[spec] = describe_error(e)
                raise _ModelUnavailable(self._errors[spec]) from None
        return self._loaded[spec]


class _ModelUnavailable(Exception):
    pass


def check_model_specs(specs: list[str]) -> None:
    """Fail fast (exit 2) on a model that names nothing; corrupt checkpoints fail their cells later."""
    from robustbench_bytes.models import MODEL_SOURCES, known_names

    for spec in specs:
        if any(MODEL_SOURCES[name].matches(spec) for name in MODEL_SOURCES):
            continue
        known = ", ".join(known_names()) or "none"
        raise BadInput(f"{spec!r}: not a zoo model (known: {known}) nor a checkpoint directory")


def describe_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    if isinstance(error, BadInput):
        return text[0] if text else type(error).__name__
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def score_cell(model, cell: Cell, corpus, options: RunOptions, desc: str):
    """Score one cell: (CellResult, documents). Errors and non-finite NLLs become a failed result."""
    from robustbench_bytes import scoring

    try:
        scored = scoring.score_corpus(model, corpus, noise=cell.noise, seed=cell.seed,
                                      batch_size=options.batch_size, progress=options.progress, desc=desc,
                                      max_length=options.max_length)
    except KeyboardInterrupt:
        raise
    except Exception as e:
        return CellResult.failed(model_spec=cell.model, model=model.name, noise=cell.noise, seed=cell.seed,
                                 corpus=corpus, error=describe_error(e),
                                 model_fingerprint=model.fingerprint), []
    return scored.result, scored.documents


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files a killed writer left behind (we hold the lock, so nobody is writing them)."""
    for folder in (out, out / results_io.CELLS_DIR):
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                path.unlink(missing_ok=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def reusable(stored, inputs: dict | None) -> bool:
    """A stored cell that was scored from the same inputs and whose numbers check out."""
    return (inputs is not None and stored is not None and stored.inputs == inputs and stored.result.ok
            and check_consistent(stored.result, list(stored.documents)) is None)


def execute(grid: list[Cell], corpus, options: RunOptions) -> RunOutcome:
    """Score every cell of the grid that is not already stored with the same inputs."""
    from robustbench_bytes import provenance, scoring

    out = Path(options.out)
    check_out_dir(out)
    log = options.log or (lambda message: None)
    models = _Models(options.device)
    described: dict[str, dict] = {}
    finished: dict[str, CellResult] = {}
    outcome = RunOutcome(results=[])
    started = _now()
    requested = {"chunk_size": scoring.DEFAULT_CHUNK_SIZE, "context": None, "stride": None,
                 "max_length": options.max_length,
                 "dtype": scoring.dtype_name(__import__("torch").device(options.device))}

    def write_results():
        outcome.results = [finished[c.key] for c in grid if c.key in finished]
        results_io.write_results(out, outcome.results)

    def write_manifest(done: str | None):
        results_io.write_json_atomic(out / results_io.MANIFEST_FILE, provenance.build_manifest(
            grid, corpus, options, scoring.SCORING_VERSION, described, started, done))

    from robustbench_bytes.progress import progress_bar

    # the whole grid: cells done and an ETA, the per-cell bar of scoring.py drawn under it
    cells_bar = progress_bar(options.progress, total=len(grid), desc="cells", unit="cell")
    if not cells_bar.disable:
        log = lambda message: cells_bar.write(message, file=sys.stderr)  # noqa: E731 (lines above the bars)
    with run_lock(out), cells_bar:
        _remove_stale_temporaries(out)
        write_manifest(None)
        for number, cell in enumerate(grid, start=1):
            label = f"[{number}/{len(grid)}] {cell.model} | {cell.noise} | seed {cell.seed}"
            if cell.model not in described:
                described[cell.model] = models.describe(cell.model)
                write_manifest(None)
            fingerprint = described[cell.model].get("model_fingerprint")
            inputs = cell_inputs(cell, fingerprint, corpus.sha256, requested) if fingerprint else None
            stored = results_io.read_cell(out, cell.key)
            if reusable(stored, inputs):
                finished[cell.key] = stored.result
                outcome.skipped += 1
                cells_bar.update()
                log(f"{label}: done before, skipped")
                continue
            t0 = time.perf_counter()
            try:
                model = models.get(cell.model)
            except _ModelUnavailable as e:
                result, documents = CellResult.failed(model_spec=cell.model, model=None, noise=cell.noise,
                                                      seed=cell.seed, corpus=corpus,
                                                      error=f"cannot load model: {e}"), []
            else:
                result, documents = score_cell(model, cell, corpus, options, desc=label)
                if result.ok and model.fingerprint != fingerprint:  # a file changed while the run went on
                    inputs = cell_inputs(cell, model.fingerprint, corpus.sha256, requested)
            results_io.write_cell(out, results_io.CellRecord(inputs, result, tuple(documents)))
            finished[cell.key] = result
            write_results()
            if result.ok:
                outcome.scored += 1
                log(f"{label}: {result.bits_per_clean_byte:.4f} bits/clean byte ({result.bits_per_byte:.4f} "
                    f"bits/byte), word-PPL {format_ppl(result.word_perplexity)} ({time.perf_counter() - t0:.1f} s)")
            else:
                outcome.failed += 1
                log(f"{label}: FAILED: {result.error}")
            cells_bar.update()
        write_results()
        write_manifest(_now())
    return outcome


def summary_rows(results: list[CellResult]) -> list[dict]:
    """Rows of the end-of-run table: model x noise x seed with bits per byte, bits per clean byte and their
    rise over the clean cell, word-PPL and its increase."""
    clean = {r.model_spec: r for r in results if r.is_clean and r.ok}
    rows = []
    for r in results:
        base = clean.get(r.model_spec) if not r.is_clean else None

        def rise(name):
            value, before = getattr(r, name), getattr(base, name) if base else None
            return value - before if r.ok and value is not None and before is not None else None

        rows.append({
            "model": r.model, "noise": r.noise, "seed": r.seed,
            "bits_per_byte": r.bits_per_byte if r.ok else None,
            "bits_per_clean_byte": r.bits_per_clean_byte if r.ok else None,
            "rise": rise("bits_per_clean_byte"),
            "word_perplexity": r.word_perplexity if r.ok else None,
            "increase": rise("word_perplexity"),
            "status": ("ok" if not r.undefined else "ok (" + "; ".join(f"{k} n/a" for k in r.undefined) + ")")
            if r.ok else f"FAILED: {r.error}",
        })
    return rows


def format_summary(results: list[CellResult]) -> str:
    """A plain-text table for the terminal, in the report's units."""
    from robustbench_bytes.formatting import format_bits, format_ppl, format_signed

    header = ["model", "noise", "seed", "bits/clean byte", "rise", "bits/byte", "word-PPL", "increase", "status"]
    body = [[r["model"], r["noise"], str(r["seed"]), format_bits(r["bits_per_clean_byte"]),
             format_signed(r["rise"]), format_bits(r["bits_per_byte"]), format_ppl(r["word_perplexity"]),
             format_signed(r["increase"], format_ppl), r["status"]]
            for r in summary_rows(results)]
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    numeric = set(range(2, 8))

    def line(row):
        return "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(row) for row in body])
