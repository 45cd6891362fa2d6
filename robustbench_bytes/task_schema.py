"""The typed results of multiple-choice task cells, to and from the JSON on disk (the field names live here).

A task cell is one model x task x noise x seed (x whether the choices are noised too). Its result object has
CONTRACT.md's `task`, `model`, `noise`, `seed`, `items`, `acc`, `acc_norm` and their bootstrap intervals
(`acc_low`, `acc_high`, ...); its per-item records hold each choice's log-likelihood and the predictions.
In a run directory: tasks.json (a JSON list of task result objects) and tasks/<cell>.json (inputs, result,
items). Run directories without them (made before tasks existed) simply have no task results.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from robustbench_bytes.errors import BadInput
from robustbench_bytes.result_schema import CLEAN, cell_key

TASK_CELL_FORMAT = "robustbench-task-cell/1"
TASKS_FILE = "tasks.json"
TASKS_DIR = "tasks"
METRICS = ("acc", "acc_norm")


def task_cell_key(model_spec: str, task: str, noise: str, seed: int, noise_choices: bool) -> str:
    """The file name (without .json) of a task cell. Clean cells do not depend on noise_choices."""
    what = f"{task}|{noise}" + ("|choices" if noise_choices and noise != CLEAN else "")
    return cell_key(model_spec, what, seed)


@dataclass(frozen=True)
class ItemRecord:
    """One item of a task cell: each choice's log-likelihood (nats), UTF-8 bytes and tokens as scored, the
    label and the two predictions (argmax of loglikelihoods, and of loglikelihoods / bytes)."""

    index: int
    id: str
    label: int
    loglikelihoods: list
    bytes: list
    tokens: list
    prediction: int
    prediction_norm: int

    @property
    def correct(self) -> bool:
        return self.prediction == self.label

    @property
    def correct_norm(self) -> bool:
        return self.prediction_norm == self.label

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: object, where: str) -> "ItemRecord":
        if not isinstance(raw, dict):
            raise BadInput(f"{where}: expected an item object")
        try:
            record = cls(index=int(raw["index"]), id=str(raw.get("id", raw["index"])), label=int(raw["label"]),
                         loglikelihoods=[float(x) for x in raw["loglikelihoods"]],
                         bytes=[int(x) for x in raw["bytes"]], tokens=[int(x) for x in raw.get("tokens") or []],
                         prediction=int(raw["prediction"]), prediction_norm=int(raw["prediction_norm"]))
        except KeyError as e:
            raise BadInput(f"{where}: lacks {e.args[0]!r}") from None
        except (TypeError, ValueError):
            raise BadInput(f"{where}: a field is not a number") from None
        if not record.loglikelihoods or len(record.loglikelihoods) != len(record.bytes):
            raise BadInput(f"{where}: loglikelihoods and bytes must list one number per choice")
        return record


@dataclass(frozen=True)
class TaskResult:
    """One task cell (CONTRACT.md's task result object)."""

    task: str
    model: str
    noise: str
    seed: int
    items: int
    model_spec: str = ""
    task_spec: str = ""  # the task as the run named it (a name or a file)
    noise_choices: bool = False
    acc: float | None = None
    acc_low: float | None = None
    acc_high: float | None = None
    acc_norm: float | None = None
    acc_norm_low: float | None = None
    acc_norm_high: float | None = None
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
                             self.noise_choices)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.acc is not None and math.isfinite(self.acc)

    @property
    def is_clean(self) -> bool:
        return self.noise == CLEAN

    def as_failed(self, error: str) -> "TaskResult":
        return replace(self, status="failed", error=error)

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out["cell"] = self.cell
        return {**self.extra, **out}

    @classmethod
    def from_json(cls, raw: object, where: str) -> "TaskResult":
        if not isinstance(raw, dict):
            raise BadInput(f"{where}: expected a task result object")
        for key in ("task", "model", "noise"):
            if key not in raw:
                raise BadInput(f"{where}: has no {key!r} field")
        names = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in raw.items() if k in names}
        values.setdefault("model_spec", raw["model"])
        values.setdefault("task_spec", raw["task"])
        values.setdefault("seed", 0)
        values.setdefault("items", 0)
        if values.get("status") not in ("ok", "failed"):
            values["status"] = "ok" if raw.get("acc") is not None else "failed"
        extra = {k: v for k, v in raw.items() if k not in names}
        try:
            result = cls(**values, extra=extra)
        except TypeError as e:
            raise BadInput(f"{where}: {e}") from None
        if not isinstance(result.seed, int) or not isinstance(result.noise, str):
            raise BadInput(f"{where}: seed must be an integer and noise a string")
        return result


def check_consistent(result: TaskResult, items: list[ItemRecord]) -> str | None:
    """Why a stored ok task cell cannot be trusted (None when it can): a count or an accuracy that its item
    records do not reproduce, or a non-finite log-likelihood."""
    if len(items) != result.items or not items:
        return f"{len(items)} item records for {result.items} items"
    for item in items:
        if not all(math.isfinite(x) for x in item.loglikelihoods):
            return f"non-finite log-likelihood in item {item.index}"
    for name, hits in (("acc", sum(i.correct for i in items)), ("acc_norm", sum(i.correct_norm for i in items))):
        value = getattr(result, name)
        if value is None or abs(value - hits / len(items)) > 1e-12:
            return f"{name} {value} is not what its item records give ({hits}/{len(items)})"
    return None
