"""The typed results of perplexity cells (CellResult, DocumentRecord), what task cells share with them, and their JSON.

Scoring builds a CellResult once; runs, report and compare read it. On disk the field names are
CONTRACT.md's (plain JSON, no NaN or infinity: an undefined metric is null and `undefined` says why).
Files written before RUN_FORMAT 2 (no `model_fingerprint`, `undefined`, `status` optional) still load, and
so do cells without `positions` (bits by position, positions.py; added with scoring version 3).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from robustbench_bytes.results import metrics
from robustbench_bytes.results.positions import Positions
from robustbench_bytes.errors import BadInput

RUN_FORMAT = "robustbench-run/2"
CELL_FORMAT = "robustbench-cell/2"
CELL_FORMATS = ("robustbench-cell/1", CELL_FORMAT)
CLEAN = "clean"
CLEAN_SEED = 0


def cell_key(model_spec: str, noise: str, seed: int) -> str:
    """The file name (without .json) of a cell: readable parts and a digest of the exact identity."""
    digest = hashlib.sha256(f"{model_spec}\0{noise}\0{seed}".encode()).hexdigest()[:10]
    return f"{_slug(model_spec, 40)}__{_slug(noise, 60)}__s{seed}-{digest}"


def _slug(text: str, limit: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_.") or "x"
    return slug[-limit:] if len(slug) > limit else slug


def derived_metrics(nll: float, n_bytes: int, clean_bytes: int, clean_words: int,
                    tokens: int | None = None) -> tuple[dict, dict]:
    """The metric table's metrics (metrics.py: CONTRACT.md's four and any registered one) from a cell's totals, and
    for each one that is undefined (None) the reason: a zero denominator, or a value past the largest float (word
    perplexity of a text with few spaces)."""
    return metrics.derived({"nll": nll, "bytes": n_bytes, "clean_bytes": clean_bytes, "clean_words": clean_words,
                            "tokens": tokens})


def metric_fields(values: dict) -> tuple[dict, dict]:
    """derived_metrics' values split into (the result object's metric fields, the rest): a registered metric is
    not a field of CellResult, so it travels in `extra` and is written beside the fields in the cell JSON."""
    names = {f.name for f in fields(CellResult)}
    return ({k: v for k, v in values.items() if k in names}, {k: v for k, v in values.items() if k not in names})


def metric_value(result, name: str):
    """A metric of a result object: its field, or for a registered metric its value in `extra` (None if absent)."""
    return getattr(result, name) if name in metrics.BUILT_IN else result.extra.get(name)


@dataclass(frozen=True)
class DocumentRecord:
    """One document of a cell: its NLL (nats) and sizes, and its NLL and bytes by position when recorded."""

    index: int
    id: str
    nll: float
    tokens: int
    bytes: int
    clean_bytes: int
    clean_words: int
    positions: dict | None = None  # positions.Positions.to_json(); absent in older files

    def to_json(self) -> dict:
        out = asdict(self)
        if self.positions is None:
            del out["positions"]
        return out

    @classmethod
    def from_json(cls, raw: object, where: str) -> "DocumentRecord":
        if not isinstance(raw, dict):
            raise BadInput(f"{where}: expected a document object")
        missing = [k for k in ("nll", "bytes", "clean_bytes", "clean_words") if k not in raw]
        if missing:
            raise BadInput(f"{where}: lacks {', '.join(missing)}")
        try:
            nll = raw["nll"]
            record = cls(index=int(raw.get("index", 0)), id=str(raw.get("id", raw.get("index", ""))),
                         nll=math.nan if nll is None else float(nll), tokens=int(raw.get("tokens") or 0),
                         bytes=int(raw["bytes"]), clean_bytes=int(raw["clean_bytes"]),
                         clean_words=int(raw["clean_words"]), positions=raw.get("positions"))
        except (TypeError, ValueError):
            raise BadInput(f"{where}: a field is not a number") from None
        _check_positions(record.positions, where)
        return record


class ResultObject:
    """What the cell and task result objects share: plain JSON with the stored cell name, fields of other
    versions kept in `extra`, and a failed copy."""

    KIND = "result"
    REQUIRED: tuple = ()

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out["cell"] = self.cell
        return {**self.extra, **out}

    def as_failed(self, error: str):
        return replace(self, status="failed", error=error)

    @property
    def is_clean(self) -> bool:
        return self.noise == CLEAN

    @classmethod
    def _defaults(cls, raw: dict) -> dict:
        return {}

    @classmethod
    def from_json(cls, raw: object, where: str):
        if not isinstance(raw, dict):
            raise BadInput(f"{where}: expected a {cls.KIND} object")
        for key in cls.REQUIRED:
            if key not in raw:
                raise BadInput(f"{where}: has no {key!r} field")
        names = {f.name for f in fields(cls)} - {"extra"}
        defaults = cls._defaults(raw)
        values = {**defaults, **{k: v for k, v in raw.items() if k in names}}
        values.setdefault("seed", CLEAN_SEED)
        if values.get("status") not in ("ok", "failed"):
            values["status"] = defaults["status"]
        extra = {k: v for k, v in raw.items() if k not in names}  # incl. the stored "cell" name
        try:
            result = cls(**values, extra=extra)
        except TypeError as e:
            raise BadInput(f"{where}: {e}") from None
        if not isinstance(result.seed, int) or not isinstance(result.noise, str):
            raise BadInput(f"{where}: seed must be an integer and noise a string")
        result._check(where)
        return result

    def _check(self, where: str) -> None:
        """More checks of a loaded object (BadInput naming `where`)."""


@dataclass(frozen=True)
class CellResult(ResultObject):
    """One model x corpus x noise x seed cell (CONTRACT.md's result object)."""

    KIND = "result"
    REQUIRED = ("model", "noise")

    model: str
    noise: str
    seed: int
    corpus: str
    documents: int
    clean_bytes: int
    model_spec: str = ""  # the model as the run named it (a zoo name, a path, hf:PATH)
    level: str | None = None
    architecture: str | None = None
    nll: float | None = None
    bytes: int | None = None
    clean_words: int | None = None
    tokens: int | None = None
    bits_per_byte: float | None = None
    bits_per_clean_byte: float | None = None
    word_perplexity: float | None = None
    byte_perplexity: float | None = None
    undefined: dict = field(default_factory=dict)  # metric -> why it is null
    seconds: float | None = None
    bytes_per_second: float | None = None
    prefix: str | None = None
    scoring: dict = field(default_factory=dict)
    batch_size: int | None = None
    scoring_version: str | None = None
    device: str | None = None
    dtype: str | None = None
    parameters: int | None = None
    model_fingerprint: str | None = None
    checkpoint_sha256: str | None = None
    corpus_sha256: str | None = None
    positions: dict | None = None  # NLL and bytes by byte offset (positions.py); None in older files
    train_length_bytes: int | None = None  # the training sequence length the model declares, if any
    train_length_tokens: int | None = None
    status: str = "ok"  # "ok" | "failed"
    error: str | None = None
    extra: dict = field(default_factory=dict)  # fields of other versions, kept as they were

    @property
    def cell(self) -> str:
        return cell_key(self.model_spec or self.model, self.noise, self.seed)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.nll is not None and math.isfinite(self.nll)

    @classmethod
    def failed(cls, *, model_spec: str, model: str | None, noise: str, seed: int, corpus, error: str,
               **known) -> "CellResult":
        """A cell that produced no valid NLL."""
        return cls(model=model or model_spec, model_spec=model_spec, noise=noise, seed=seed, corpus=corpus.name,
                   documents=len(corpus.documents), clean_bytes=corpus.bytes, corpus_sha256=corpus.sha256,
                   status="failed", error=error, **known)

    @classmethod
    def _defaults(cls, raw: dict) -> dict:
        return {"model_spec": raw["model"], "corpus": "", "documents": 0, "clean_bytes": 0,
                "status": "ok" if raw.get("nll") is not None else "failed"}

    def _check(self, where: str) -> None:
        _check_positions(self.positions, where)


def _check_positions(raw, where: str) -> None:
    if raw is not None:
        Positions.from_json(raw, where)


def to_plain_json(obj: Any) -> Any:
    """NaN and infinities are not JSON: stored as null (a result's `undefined` or `status` says why)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: to_plain_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain_json(v) for v in obj]
    return obj
