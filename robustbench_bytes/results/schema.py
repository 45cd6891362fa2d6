"""The typed results: cell and task result objects and their per-document / per-item records, and their JSON.

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
from robustbench_bytes.errors import BadInput

RUN_FORMAT = "robustbench-run/2"
CELL_FORMAT = "robustbench-cell/2"
CELL_FORMATS = ("robustbench-cell/1", CELL_FORMAT)
CLEAN = "clean"
CLEAN_SEED = 0
LN2 = metrics.LN2  # kept here for the modules that import it from the schema


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


class _ResultObject:
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
class CellResult(_ResultObject):
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
        from robustbench_bytes.scoring.positions import Positions

        Positions.from_json(raw, where)


def _close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def check_consistent(result: CellResult, documents: list[DocumentRecord]) -> str | None:
    """Why a stored ok cell cannot be trusted (None when it can): a non-finite number, document records that are
    not documents 0..n-1 once each, totals that are not the sums of its per-document records, derived metrics
    (bits per byte, per clean byte, word and byte perplexity, and which are undefined) that do not follow from
    those totals, or positions that do not add up."""
    if result.nll is None or not math.isfinite(result.nll):
        return f"non-finite NLL ({result.nll})"
    for doc in documents:
        if not math.isfinite(doc.nll):
            return f"non-finite NLL ({doc.nll}) in document {doc.index}"
    if len(documents) != result.documents:
        return f"{len(documents)} document records for {result.documents} documents"
    if sorted(d.index for d in documents) != list(range(len(documents))):
        return f"document records are not documents 0..{len(documents) - 1} once each"
    total = math.fsum(d.nll for d in documents)
    if not _close(total, result.nll):
        return f"NLL {result.nll} is not the sum of its documents' ({total})"
    sums = ["bytes", "clean_bytes", "clean_words"] + (["tokens"] if result.tokens is not None else [])
    for name in sums:
        value = getattr(result, name)
        if value != sum(getattr(d, name) for d in documents):
            return f"{name} {value} is not the sum of its documents'"
    return _derived_mismatch(result) or _positions_mismatch(result, documents)


def _derived_mismatch(result: CellResult) -> str | None:
    """A derived metric that is not what the metric table gives from the cell's totals (or undefined when it is
    not). A registered metric the cell does not carry (stored before it existed) is not checked."""
    values, undefined = derived_metrics(result.nll, result.bytes, result.clean_bytes, result.clean_words,
                                        result.tokens)
    carried = [name for name in values if name in metrics.BUILT_IN or name in result.extra]
    for name in carried:
        stored, want = metric_value(result, name), values[name]
        if stored is not None and (not isinstance(stored, (int, float)) or not math.isfinite(stored)):
            return f"non-finite {name} ({stored})"
        if (stored is None) != (want is None) or (want is not None and not _close(stored, want, 1e-12)):
            return f"{name} {stored} does not follow from the cell's totals ({want})"
    if set(result.undefined or {}) & set(carried) != set(undefined) & set(carried):
        return f"undefined metrics {sorted(result.undefined or {})} are not {sorted(undefined)}"
    return None


def _positions_mismatch(result: CellResult, documents: list[DocumentRecord]) -> str | None:
    """Positions, where recorded, that do not add up to their cell's or document's nll and bytes, or a cell's
    positions that are not the sum of its documents'."""
    from robustbench_bytes.scoring.positions import Positions, mismatch, total

    for doc in documents:
        if doc.positions is not None:
            why = mismatch(Positions.from_json(doc.positions, f"document {doc.index}"), doc.nll, doc.bytes)
            if why:
                return f"document {doc.index}: {why}"
    if result.positions is None:
        return None
    cell = Positions.from_json(result.positions, "result")
    why = mismatch(cell, result.nll, result.bytes)
    if why:
        return why
    if documents and all(d.positions is not None for d in documents):
        summed = total(Positions.from_json(d.positions, f"document {d.index}") for d in documents)
        if (summed.n_buckets != cell.n_buckets or list(summed.bytes) != list(cell.bytes)
                or not all(_close(a, b) for a, b in zip(summed.nll.tolist(), cell.nll.tolist()))):
            return "positions are not the sum of its documents' positions"
    return None


def check_labels(result, expected: dict) -> str | None:
    """The first field of `result` whose value is not the expected one (field -> value), or None."""
    for name, want in expected.items():
        have = getattr(result, name, None)
        if have != want:
            return f"{name} {have!r} is not the {want!r} it was scored for"
    return None


def check_records(records, expected: list[dict]) -> str | None:
    """The first per-document or per-item record (in index order) whose fields are not the expected ones
    (one field -> value dict per record, by index), or None."""
    by_index = sorted(records, key=lambda r: r.index)
    if len(by_index) != len(expected):
        return f"{len(by_index)} records where {len(expected)} were scored"
    for record, want in zip(by_index, expected):
        for name, value in want.items():
            if getattr(record, name) != value:
                return f"record {record.index}: {name} {getattr(record, name)!r} is not the {value!r} of its input"
    return None


# ---------------------------------------------------------------- multiple-choice task cells
# A task cell is one model x task x noise x seed (x whether the choices are noised too). Its result object has
# CONTRACT.md's `task`, `model`, `noise`, `seed`, `items`, `acc`, `acc_norm` and their bootstrap intervals
# (`acc_low`, `acc_high`, ...); its per-item records hold each choice's log-likelihood and the predictions.
# In a run directory: tasks.json (a JSON list of task result objects) and tasks/<cell>.json (inputs, result,
# items). Run directories without them (made before tasks existed) simply have no task results.

TASK_CELL_FORMAT = "robustbench-task-cell/1"
TASKS_FILE = "tasks.json"
TASKS_DIR = "tasks"


NOISE_TARGETS = ("context", "completion", "both")  # what a task cell's noise changes (lm-eval's words)


def task_cell_key(model_spec: str, task: str, noise: str, seed: int, noise_target: str = "context") -> str:
    """The file name (without .json) of a task cell. Clean cells do not depend on the noise target; the
    context target keeps the key it had before targets existed, both keeps the old noise_choices key."""
    suffix = {"context": "", "both": "|choices", "completion": "|completion"}[noise_target]
    return cell_key(model_spec, f"{task}|{noise}" + (suffix if noise != CLEAN else ""), seed)


@dataclass(frozen=True)
class ItemRecord:
    """One item of a task cell: each choice's log-likelihood (nats), UTF-8 bytes, characters and tokens as
    scored, the label and the three predictions (predictions(): argmax of the log-likelihoods, of them per
    character and per byte). Records of task scoring version 1 have no characters: their prediction_norm is
    per byte (acc_norm then meant per byte) and there is no prediction_bytes."""

    index: int
    id: str
    label: int
    loglikelihoods: list
    bytes: list
    tokens: list
    prediction: int
    prediction_norm: int
    chars: list | None = None
    prediction_bytes: int | None = None

    @property
    def correct(self) -> bool:
        return self.prediction == self.label

    @property
    def correct_norm(self) -> bool:
        return self.prediction_norm == self.label

    @property
    def correct_bytes(self) -> bool | None:
        return None if self.prediction_bytes is None else self.prediction_bytes == self.label

    def to_json(self) -> dict:
        out = asdict(self)
        return out if self.chars is not None else {k: v for k, v in out.items()
                                                    if k not in ("chars", "prediction_bytes")}

    @classmethod
    def from_json(cls, raw: object, where: str) -> "ItemRecord":
        if not isinstance(raw, dict):
            raise BadInput(f"{where}: expected an item object")
        try:
            chars = raw.get("chars")
            record = cls(index=int(raw["index"]), id=str(raw.get("id", raw["index"])), label=int(raw["label"]),
                         loglikelihoods=[float(x) for x in raw["loglikelihoods"]],
                         bytes=[int(x) for x in raw["bytes"]], tokens=[int(x) for x in raw.get("tokens") or []],
                         prediction=int(raw["prediction"]), prediction_norm=int(raw["prediction_norm"]),
                         chars=None if chars is None else [int(x) for x in chars],
                         prediction_bytes=None if chars is None else int(raw["prediction_bytes"]))
        except KeyError as e:
            raise BadInput(f"{where}: lacks {e.args[0]!r}") from None
        except (TypeError, ValueError):
            raise BadInput(f"{where}: a field is not a number") from None
        n = len(record.loglikelihoods)
        if not n or len(record.bytes) != n or (record.chars is not None and len(record.chars) != n):
            raise BadInput(f"{where}: loglikelihoods, bytes and chars must list one number per choice")
        return record


@dataclass(frozen=True)
class TaskResult(_ResultObject):
    """One task cell (CONTRACT.md's task result object)."""

    KIND = "task result"
    REQUIRED = ("task", "model", "noise")

    task: str
    model: str
    noise: str
    seed: int
    items: int
    model_spec: str = ""
    task_spec: str = ""  # the task as the run named it (a name or a file)
    noise_target: str = "context"  # NOISE_TARGETS; "context" for a clean cell
    acc: float | None = None
    acc_low: float | None = None
    acc_high: float | None = None
    acc_norm: float | None = None  # per character of the choice (per byte in task scoring version 1)
    acc_norm_low: float | None = None
    acc_norm_high: float | None = None
    acc_bytes: float | None = None  # per UTF-8 byte of the choice (none in task scoring version 1)
    acc_bytes_low: float | None = None
    acc_bytes_high: float | None = None
    confidence: float | None = None
    choices: int | None = None  # (context, choice) pairs scored
    level: str | None = None
    architecture: str | None = None
    prefix: str | None = None
    seconds: float | None = None
    device: str | None = None
    dtype: str | None = None
    scoring_version: str | None = None
    model_fingerprint: str | None = None
    task_sha256: str | None = None
    status: str = "ok"  # "ok" | "failed"
    error: str | None = None
    extra: dict = field(default_factory=dict)  # fields of other versions, kept as they were

    @property
    def cell(self) -> str:
        return task_cell_key(self.model_spec or self.model, self.task_spec or self.task, self.noise, self.seed,
                             self.noise_target)

    @property
    def noise_choices(self) -> bool:
        """Whether the choices were noised (the completion target, or both)."""
        return self.noise_target != "context"

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.acc is not None and math.isfinite(self.acc)

    @classmethod
    def _defaults(cls, raw: dict) -> dict:
        return {"model_spec": raw["model"], "task_spec": raw["task"], "items": 0,
                "status": "ok" if raw.get("acc") is not None else "failed",
                "noise_target": "both" if raw.get("noise_choices") is True else "context"}  # before targets

    def _check(self, where: str) -> None:
        if self.noise_target not in NOISE_TARGETS:
            raise BadInput(f"{where}: noise_target {self.noise_target!r}; expected one of {', '.join(NOISE_TARGETS)}")


def _argmax(values: list) -> int:
    """The first index of the largest value."""
    return max(range(len(values)), key=lambda j: (values[j], -j))


def predictions(loglikelihoods: list, sizes: list, chars: list | None = None) -> tuple[int, int, int | None]:
    """(prediction, prediction_norm, prediction_bytes) of one item, as lm-evaluation-harness's multiple-choice
    metrics: the argmax of the log-likelihoods (acc), of them divided by the choice's characters (acc_norm) and
    by its UTF-8 bytes (acc_bytes); a length of 0 counts as 1. Without `chars` (task scoring version 1),
    prediction_norm is per byte and prediction_bytes None."""
    per_byte = _argmax([ll / max(1, n) for ll, n in zip(loglikelihoods, sizes)])
    if chars is None:
        return _argmax(loglikelihoods), per_byte, None
    return _argmax(loglikelihoods), _argmax([ll / max(1, n) for ll, n in zip(loglikelihoods, chars)]), per_byte


def check_task_consistent(result: TaskResult, items: list[ItemRecord]) -> str | None:
    """Why a stored ok task cell cannot be trusted (None when it can): item records that are not items 0..n-1
    once each, a non-finite log-likelihood, a label out of range, a prediction that is not the argmax of its
    item's log-likelihoods, or accuracies that the predictions do not reproduce (results.verified_problem also
    checks the intervals, which need task scoring's bootstrap)."""
    if len(items) != result.items or not items:
        return f"{len(items)} item records for {result.items} items"
    if sorted(i.index for i in items) != list(range(len(items))):
        return f"item records are not items 0..{len(items) - 1} once each"
    for item in items:
        if not all(math.isfinite(x) for x in item.loglikelihoods):
            return f"non-finite log-likelihood in item {item.index}"
        if not 0 <= item.label < len(item.loglikelihoods):
            return f"item {item.index}: label {item.label} is not one of its {len(item.loglikelihoods)} choices"
        expected = predictions(item.loglikelihoods, item.bytes, item.chars)
        if (item.prediction, item.prediction_norm, item.prediction_bytes) != expected:
            return (f"item {item.index}: predictions {item.prediction}, {item.prediction_norm}, "
                    f"{item.prediction_bytes} are not the argmax of its log-likelihoods {expected}")
    for name, column in accuracy_columns(items).items():
        value = getattr(result, name)
        if column is None:
            if value is not None:
                return f"{name} {value} but its item records have no {name} predictions"
        elif value is None or abs(value - sum(column) / len(items)) > 1e-12:
            return f"{name} {value} is not what its item records give ({sum(column)}/{len(items)})"
    return None


def accuracy_columns(items: list[ItemRecord]) -> dict[str, list[bool] | None]:
    """Per accuracy metric, whether each item was right (None: the records predate acc_bytes)."""
    with_bytes = all(i.prediction_bytes is not None for i in items)
    return {"acc": [i.correct for i in items], "acc_norm": [i.correct_norm for i in items],
            "acc_bytes": [i.correct_bytes for i in items] if with_bytes else None}


def to_plain_json(obj: Any) -> Any:
    """NaN and infinities are not JSON: stored as null (a result's `undefined` or `status` says why)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: to_plain_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain_json(v) for v in obj]
    return obj
