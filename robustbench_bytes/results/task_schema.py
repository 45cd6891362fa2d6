"""The typed results of multiple-choice task cells: the result object (TaskResult), its per-item records, the
predictions lm-evaluation-harness's acc / acc_norm / acc_bytes take, and each item's right/wrong column per accuracy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from robustbench_bytes.errors import BadInput
from robustbench_bytes.results.schema import CLEAN, ResultObject, cell_key

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
class TaskResult(ResultObject):
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


def accuracy_columns(items: list[ItemRecord]) -> dict[str, list[bool] | None]:
    """Per accuracy metric, whether each item was right (None: the records predate acc_bytes)."""
    with_bytes = all(i.prediction_bytes is not None for i in items)
    return {"acc": [i.correct for i in items], "acc_norm": [i.correct_norm for i in items],
            "acc_bytes": [i.correct_bytes for i in items] if with_bytes else None}
