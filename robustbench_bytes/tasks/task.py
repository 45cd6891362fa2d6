"""One multiple-choice task: its items, and reading and writing a task file.

A task file is a `.jsonl`, one item a line: {"context": str, "choices": [str, ...], "label": int} (optional
"id", and "target_delimiter", default ""). HellaSwag's own fields are read too: {"ctx": str, "endings": [str,
...], "label": int or "3"} (optional "ind"), with the target delimiter " " that lm-evaluation-harness puts
between a HellaSwag context and its endings. A choice is scored as context + delimiter + choice; the choice
itself (without the delimiter) is what acc_norm's length counts and what a noise on completions changes, as in
lm-evaluation-harness (its doc_to_choice and target_delimiter).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from robustbench_bytes.data.corpus import read_jsonl
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import write_text_atomic


@dataclass(frozen=True)
class TaskItem:
    """One question: the context, its candidate continuations and the index of the right one."""

    context: str
    choices: tuple[str, ...]
    label: int
    id: str = ""
    delimiter: str = ""  # between the context and every choice (lm-evaluation-harness's target_delimiter)

    @property
    def continuations(self) -> tuple[str, ...]:
        """What is scored after the context: delimiter + choice."""
        return tuple(self.delimiter + c for c in self.choices)


@dataclass(frozen=True)
class Task:
    name: str
    items: tuple[TaskItem, ...]
    description: str = ""  # how the task was made (shown by `robustbench tasks`)
    provenance: str = ""
    license: str = ""

    @property
    def sha256(self) -> str:
        """sha256 of the items as canonical JSON lines: what decides the numbers (a file's whitespace does not)."""
        h = hashlib.sha256()
        for item in self.items:
            h.update(json.dumps([item.context, list(item.continuations), item.label],
                                ensure_ascii=False).encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()

    @property
    def choices(self) -> int:
        """Total number of (context, choice) pairs."""
        return sum(len(item.choices) for item in self.items)


def check_item(item: object, where: str, keys: tuple[str, str] = ("context", "choices")) -> TaskItem:
    """The item when it is one a task can score: a string context, at least 2 non-empty string choices, an integer
    label indexing them, a string delimiter; else BadInput naming `where` and the field (`keys`: what a file
    calls the context and the choices). Every task is held to it: a file's lines, the built-ins, plug-ins."""
    if not isinstance(item, TaskItem):
        raise BadInput(f"{where}: expected a robustbench_bytes.tasks.TaskItem, got {type(item).__name__}")
    if not isinstance(item.context, str):
        raise BadInput(f"{where}: '{keys[0]}' must be a string")
    choices = item.choices
    if not isinstance(choices, (tuple, list)) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
        raise BadInput(f"{where}: '{keys[1]}' must be a list of at least 2 non-empty strings")
    label = item.label
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(choices):
        raise BadInput(f"{where}: 'label' = {label!r}; expected an integer index into the {len(choices)} choices")
    if not isinstance(item.delimiter, str):
        raise BadInput(f"{where}: 'target_delimiter' must be a string")
    return item


def check_task(task: object, where: str) -> Task:
    """The task when every item passes check_item and it has at least one; else BadInput naming the item."""
    if not isinstance(task, Task):
        raise BadInput(f"{where}: expected a robustbench_bytes.tasks.Task, got {type(task).__name__}")
    if not task.items:
        raise BadInput(f"{where}: holds no items")
    for i, item in enumerate(task.items):
        check_item(item, f"{where}: item {i}")
    return task


def parse_item(raw: object, where: str, index: int) -> TaskItem:
    """One line of a task file as a TaskItem; BadInput naming the line and key at fault."""
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: expected a JSON object with context, choices and label")
    if "context" in raw or "choices" in raw:
        keys, delimiter = ("context", "choices"), raw.get("target_delimiter", "")
    elif "ctx" in raw or "endings" in raw:
        keys, delimiter = ("ctx", "endings"), " "
    else:
        raise BadInput(f"{where}: has neither 'context'/'choices' nor HellaSwag's 'ctx'/'endings'")
    if "label" not in raw:
        raise BadInput(f"{where}: has no 'label'")
    label = raw["label"]
    if isinstance(label, str) and label.strip().isdigit():  # HellaSwag writes "3"
        label = int(label.strip())
    choices = raw.get(keys[1])
    item = TaskItem(raw.get(keys[0]), tuple(choices) if isinstance(choices, list) else choices, label,
                    str(raw.get("id", raw.get("ind", index))), delimiter)
    return check_item(item, where, keys)


def load_task_file(path: Path | str) -> Task:
    path = Path(path)
    items = []
    for lineno, raw in read_jsonl(path, "task file (.jsonl)", "one task item a line"):
        items.append(parse_item(raw, f"{path}:{lineno}", len(items)))
    if not items:
        raise BadInput(f"{path}: holds no items; expected one JSON object a line")
    return Task(name=path.stem, items=tuple(items), description=f"task file {path}", provenance=str(path))


def write_task_file(task: Task, path: Path | str) -> None:
    """The task in our own format (the inverse of load_task_file), written atomically."""
    lines = [json.dumps({"id": it.id, "context": it.context, "choices": list(it.choices), "label": it.label,
                         **({"target_delimiter": it.delimiter} if it.delimiter else {})}, ensure_ascii=False)
             for it in task.items]
    write_text_atomic(path, "\n".join(lines) + "\n")
