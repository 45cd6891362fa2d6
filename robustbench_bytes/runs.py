"""The run grid: models x (clean + noise specs) x seeds, scored cell by cell, resumable.

A cell is identified by (model spec, canonical noise, seed) and stored as cells/<key>.json with the
fingerprint of its inputs (checkpoint sha256, corpus sha256, canonical noise, seed, scoring
version). A rerun skips a cell whose stored fingerprint matches and recomputes it otherwise; a
failed cell is always retried. results.json is rebuilt from the cell files after every cell, so a
kill at any moment loses at most the cell being scored.

results.json lists the cells of the grid just asked for, in grid order. Cells of earlier grids in
the same directory stay in cells/ and are reused when a later grid asks for them again.

Clean cells carry no randomness: they are scored once, with seed 0, whatever --seed says.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import math
import os
import platform
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from robustbench_bytes import __version__
from robustbench_bytes.errors import BadInput
from robustbench_bytes import results as results_io

CLEAN = "clean"
CLEAN_SEED = 0
RUN_FORMAT = "robustbench-run/1"
METRIC_FIELDS = ("nll", "bits_per_byte", "bits_per_clean_byte", "word_perplexity", "byte_perplexity")
_LIBRARIES = ("torch", "numpy", "pandas", "matplotlib", "click", "tqdm", "tokenizers", "safetensors",
              "triton", "numba", "transformers")


@dataclass(frozen=True)
class Cell:
    """One cell of the grid: a model spec (as the user named it), a canonical noise spec, a seed."""

    model: str
    noise: str
    seed: int

    @property
    def key(self) -> str:
        digest = hashlib.sha256(f"{self.model}\0{self.noise}\0{self.seed}".encode()).hexdigest()[:10]
        return f"{_slug(self.model, 40)}__{_slug(self.noise, 60)}__s{self.seed}-{digest}"


def _slug(text: str, limit: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_.") or "x"
    return slug[-limit:] if len(slug) > limit else slug


def expand_noises(noises: list[str], suite: str | None) -> list[str]:
    """Canonical noise specs, presets expanded, duplicates and `clean` dropped, first-seen order."""
    from robustbench_bytes import noise as noise_lib

    specs: list[str] = []
    if suite is not None:
        if suite not in noise_lib.PRESETS:
            known = ", ".join(sorted(noise_lib.PRESETS))
            raise BadInput(f"--suite {suite!r}: no such noise preset (known: {known})")
        specs.extend(noise_lib.expand(suite))
    for spec in noises:
        try:
            specs.extend(noise_lib.expand(spec))
        except noise_lib.NoiseSpecError as e:
            raise BadInput(f"--noise {spec!r}: {e}") from None
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
    progress: bool = False
    log: Callable[[str], None] | None = None
    command_line: list[str] = field(default_factory=lambda: list(sys.argv))


@dataclass
class RunOutcome:
    results: list[dict]
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


def cell_inputs(cell: Cell, checkpoint_sha256: str, corpus_sha256: str, scoring_version: str) -> dict:
    """Everything that decides a cell's numbers; a stored cell is reused only when this matches."""
    return {
        "model": cell.model,
        "checkpoint_sha256": checkpoint_sha256,
        "corpus_sha256": corpus_sha256,
        "noise": cell.noise,
        "seed": cell.seed,
        "scoring_version": scoring_version,
    }


class _Models:
    """Loads each model at most once, when its first cell needs scoring; keeps one at a time."""

    def __init__(self, device: str):
        self.device = device
        self._loaded: dict[str, object] = {}
        self._sha: dict[str, str] = {}
        self._errors: dict[str, str] = {}

    def get(self, spec: str):
        if spec in self._errors:
            raise _ModelUnavailable(self._errors[spec])
        if spec not in self._loaded:
            from robustbench_bytes.models import load_model

            self._loaded.clear()  # one model in memory at a time: the grid is model-major
            try:
                model = load_model(spec, device=self.device)
            except Exception as e:  # a corrupt checkpoint fails its cells, not the whole run
                self._errors[spec] = _describe(e)
                raise _ModelUnavailable(self._errors[spec]) from None
            self._loaded[spec] = model
            self._sha[spec] = model.checkpoint_sha256
        return self._loaded[spec]

    def checkpoint_sha256(self, spec: str) -> str | None:
        """The checkpoint hash, without loading the model when the weights are files on disk."""
        if spec in self._sha:
            return self._sha[spec]
        if spec in self._errors:
            return None
        directory = _checkpoint_dir(spec)
        if directory is not None:
            from robustbench_bytes.models.checkpoint import checkpoint_sha256

            try:
                self._sha[spec] = checkpoint_sha256(directory)
                return self._sha[spec]
            except Exception:
                pass  # let the loader say what is wrong
        try:
            return self.get(spec).checkpoint_sha256
        except _ModelUnavailable:
            return None

    def error(self, spec: str) -> str | None:
        return self._errors.get(spec)


class _ModelUnavailable(Exception):
    pass


def _checkpoint_dir(spec: str) -> Path | None:
    """The folder holding a model's weights when the spec names one (zoo name or directory)."""
    if spec.startswith("hf:"):
        return None
    from robustbench_bytes import models

    if spec in models.zoo_names():
        return Path(models.ZOO_DIR) / spec
    path = Path(spec).expanduser()
    return path if path.is_dir() and (path / "config.json").is_file() else None


def check_model_specs(specs: list[str]) -> None:
    """Fail fast (exit 2) on a model that names nothing; corrupt checkpoints fail their cells later."""
    from robustbench_bytes.models import hf, zoo_names

    zoo = set(zoo_names())
    named = zoo | {getattr(hf, "SMOLLM2_NAME", "smollm2-135m")}
    for spec in specs:
        if spec in named or spec.startswith("hf:") or Path(spec).expanduser().is_dir():
            continue
        known = ", ".join(sorted(zoo)) or "none"
        raise BadInput(f"--model {spec!r}: not a zoo model (known: {known}) nor a checkpoint directory")


def _describe(error: BaseException) -> str:
    if hasattr(error, "format_message"):
        return error.format_message()
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _failed_result(cell: Cell, corpus, error: str, model_name: str | None = None) -> dict:
    result = {
        "model": model_name or cell.model,
        "noise": cell.noise,
        "seed": cell.seed,
        "corpus": corpus.name,
        "documents": len(corpus.documents),
        "clean_bytes": corpus.bytes,
    }
    result.update({name: None for name in METRIC_FIELDS})
    result.update(status="failed", error=error)
    return result


def _non_finite(result: dict, documents: list[dict]) -> str | None:
    for doc in documents:
        nll = doc.get("nll")
        if nll is None or not math.isfinite(float(nll)):
            return f"non-finite NLL ({nll}) in document {doc.get('index')}"
    for name in METRIC_FIELDS:
        value = result.get(name)
        if value is None or not math.isfinite(float(value)):
            return f"non-finite {name} ({value})"
    return None


def score_cell(model, cell: Cell, corpus, options: RunOptions, desc: str) -> tuple[dict, list[dict]]:
    """Score one cell; (result, documents). Errors and non-finite numbers become a failed result."""
    from robustbench_bytes import scoring

    try:
        scored = scoring.score_corpus(model, corpus, noise=cell.noise, seed=cell.seed,
                                      batch_size=options.batch_size, progress=options.progress, desc=desc)
    except KeyboardInterrupt:
        raise
    except Exception as e:
        return _failed_result(cell, corpus, _describe(e), getattr(model, "name", None)), []
    result, documents = dict(scored.result), [dict(d) for d in scored.documents]
    problem = _non_finite(result, documents)
    if problem:
        failed = _failed_result(cell, corpus, problem, result.get("model"))
        return failed, documents
    result.update(status="ok", error=None)
    return result, documents


@functools.lru_cache(maxsize=1)
def _git_hash() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def _library_versions() -> tuple:
    from importlib import metadata

    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return tuple(versions.items())


def library_versions() -> dict[str, str]:
    return dict(_library_versions())


def _device_description(device: str) -> str:
    if device.startswith("cuda"):
        try:
            import torch

            return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
        except Exception:
            return device
    return f"{device} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def build_manifest(grid: list[Cell], corpus, options: RunOptions, scoring_version: str,
                   checkpoints: dict[str, str | None], started: str, finished: str | None) -> dict:
    seeds = sorted({c.seed for c in grid if c.noise != CLEAN}) or [CLEAN_SEED]
    return {
        "format": RUN_FORMAT,
        "package": {"name": "robustbench-bytes", "version": __version__, "git": _git_hash()},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
        "device": _device_description(options.device),
        "batch_size": options.batch_size,
        "scoring_version": scoring_version,
        "seeds": seeds,
        "models": [{"model": m, "checkpoint_sha256": checkpoints.get(m)} for m in dict.fromkeys(c.model for c in grid)],
        "noises": list(dict.fromkeys(c.noise for c in grid)),
        "corpus": {"name": corpus.name, "sha256": corpus.sha256, "documents": len(corpus.documents),
                   "bytes": corpus.bytes, "limit_bytes": options.limit_bytes,
                   "provenance": corpus.provenance, "license": corpus.license},
        "cells": [c.key for c in grid],
        "command_line": options.command_line,
        "started": started,
        "finished": finished,
    }


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files a killed writer left behind (we hold the lock, so nobody is writing them)."""
    for folder in (out, out / results_io.CELLS_DIR):
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                path.unlink(missing_ok=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def execute(grid: list[Cell], corpus, options: RunOptions) -> RunOutcome:
    """Score every cell of the grid that is not already stored with the same inputs."""
    from robustbench_bytes import scoring

    out = Path(options.out)
    log = options.log or (lambda message: None)
    version = str(scoring.SCORING_VERSION)
    corpus_sha = corpus.sha256
    models = _Models(options.device)
    checkpoints: dict[str, str | None] = {}
    finished: dict[str, dict] = {}
    outcome = RunOutcome(results=[])
    started = _now()

    def write_results():
        outcome.results = [finished[c.key] for c in grid if c.key in finished]
        results_io.write_json_atomic(out / results_io.RESULTS_FILE, outcome.results)

    def write_manifest(done: str | None):
        results_io.write_json_atomic(out / results_io.MANIFEST_FILE,
                                     build_manifest(grid, corpus, options, version, checkpoints, started, done))

    with run_lock(out):
        _remove_stale_temporaries(out)
        write_manifest(None)
        for number, cell in enumerate(grid, start=1):
            label = f"[{number}/{len(grid)}] {cell.model} | {cell.noise} | seed {cell.seed}"
            if cell.model not in checkpoints:
                checkpoints[cell.model] = models.checkpoint_sha256(cell.model)
                write_manifest(None)
            sha = checkpoints[cell.model]
            inputs = cell_inputs(cell, sha, corpus_sha, version) if sha else None
            stored = results_io.read_cell(out, cell.key)
            if (inputs is not None and stored is not None and stored.get("status") == "ok"
                    and stored.get("inputs") == inputs):
                finished[cell.key] = stored["result"]
                outcome.skipped += 1
                log(f"{label}: done before, skipped")
                continue
            t0 = time.perf_counter()
            try:
                model = models.get(cell.model)
            except _ModelUnavailable as e:
                result, documents = _failed_result(cell, corpus, f"cannot load model: {e}"), []
            else:
                result, documents = score_cell(model, cell, corpus, options, desc=label)
            result.update(seed=cell.seed, noise=cell.noise, cell=cell.key, model_spec=cell.model,
                          checkpoint_sha256=sha, corpus_sha256=corpus_sha, scoring_version=version)
            record = {"format": results_io.CELL_FORMAT, "cell": cell.key, "inputs": inputs,
                      "status": result["status"], "result": result, "documents": documents}
            results_io.write_cell(out, record)
            finished[cell.key] = result
            write_results()
            if result["status"] == "ok":
                outcome.scored += 1
                log(f"{label}: {result['bits_per_byte']:.4f} bits/byte, word-PPL "
                    f"{result['word_perplexity']:.4g} ({time.perf_counter() - t0:.1f} s)")
            else:
                outcome.failed += 1
                log(f"{label}: FAILED: {result['error']}")
        write_results()
        write_manifest(_now())
    return outcome


def summary_rows(results: list[dict]) -> list[dict]:
    """Rows of the end-of-run table: model x noise x seed with bpb, word-PPL and its increase."""
    clean_ppl = {r["model_spec" if "model_spec" in r else "model"]: r.get("word_perplexity")
                 for r in results if r["noise"] == CLEAN and r.get("status", "ok") == "ok"}
    rows = []
    for r in results:
        key = r.get("model_spec", r["model"])
        ok = r.get("status", "ok") == "ok"
        ppl = r.get("word_perplexity") if ok else None
        base = clean_ppl.get(key)
        rows.append({
            "model": r["model"], "noise": r["noise"], "seed": r["seed"],
            "bits_per_byte": r.get("bits_per_byte") if ok else None,
            "word_perplexity": ppl,
            "increase": (ppl - base) if (ppl is not None and base is not None and r["noise"] != CLEAN) else None,
            "status": "ok" if ok else f"FAILED: {r.get('error')}",
        })
    return rows


def format_summary(results: list[dict]) -> str:
    """A plain-text table for the terminal."""
    def number(value, fmt):
        return "-" if value is None else format(value, fmt)

    from robustbench_bytes.report import format_ppl

    def ppl(value, signed=False):
        return "-" if value is None else ("+" if signed and value >= 0 else "") + format_ppl(value)

    header = ["model", "noise", "seed", "bits/byte", "word-PPL", "increase", "status"]
    body = [[r["model"], r["noise"], str(r["seed"]), number(r["bits_per_byte"], ".4f"),
             ppl(r["word_perplexity"]), ppl(r["increase"], signed=True), r["status"]]
            for r in summary_rows(results)]
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    numeric = {2, 3, 4, 5}

    def line(row):
        return "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(row) for row in body])
