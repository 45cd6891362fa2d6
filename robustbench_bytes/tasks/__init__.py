"""The registry of named multiple-choice tasks, and resolve_task(NAME_OR_FILE) -> Task (task.py: the format).

Named tasks live in TASKS, a plugins.Registry: the built-ins (builtin.py) and installed packages through
the entry-point group `robustbench_bytes.tasks` (an entry point gives a Task, or a function of no arguments
returning one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from robustbench_bytes.tasks import builtin as tasks_builtin
from robustbench_bytes.errors import BadInput
from robustbench_bytes.plugins import Registry
from robustbench_bytes.tasks.task import Task, TaskItem, check_task, load_task_file, parse_item, write_task_file

__all__ = ["Task", "TaskItem", "TaskSource", "TASKS", "register_task", "task_names", "resolve_task", "load_task_file",
           "parse_item", "write_task_file"]


@dataclass(frozen=True)
class TaskSource:
    """A named task, built on first use (the built-ins read corpora)."""

    name: str
    summary: str
    load: Callable[[], Task] = field(compare=False)


def _accept_plugin(name: str, obj: object) -> TaskSource:
    if not isinstance(obj, Task) and callable(obj) and not isinstance(obj, type):
        obj = obj()
    if not isinstance(obj, Task):
        raise TypeError(f"expected a robustbench_bytes.tasks.Task or a function returning one, got "
                        f"{type(obj).__name__}")
    task = obj
    return TaskSource(name, task.description or f"installed task ({len(task.items)} items)", lambda: task)


TASKS: Registry[TaskSource] = Registry("task", "robustbench_bytes.tasks", _accept_plugin)


def register_task(source: TaskSource) -> TaskSource:
    return TASKS.register(source.name, source)


for _name, (_summary, _load) in tasks_builtin.loaders().items():
    register_task(TaskSource(_name, _summary, _load))


def task_names() -> list[str]:
    return list(TASKS)


def resolve_task(spec: str) -> Task:
    """A registered task name, or a path to a .jsonl task file."""
    if not isinstance(spec, str) or not spec:
        raise BadInput(f"task {spec!r}: expected a task name or a .jsonl file")
    if spec in TASKS:
        return check_task(TASKS[spec].load(), f"task {spec!r}")
    if Path(spec).exists():
        return load_task_file(spec)
    known = ", ".join(TASKS) or "none"
    raise BadInput(f"task {spec!r}: no such task (known: {known}) and no such file")
