"""Registries of named plug-ins (noises, model loaders, corpora, tasks): the built-ins register in code, installed
packages through a Python entry-point group, found on first use."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import metadata
from typing import Any, Callable, Generic, Iterator, TypeVar

from robustbench_bytes.errors import BadInput, RobustbenchError, first_line

T = TypeVar("T")


class Registry(Mapping, Generic[T]):
    """name -> T. `accept(name, obj)` turns what an entry point loads (the object itself, or a function of no
    arguments returning it) into a T, or raises saying what was expected. `guard(item, where)`: the item with
    each of its plug-in functions wrapped by guarded(), so that a plug-in that raises or returns the wrong type
    is one line naming it (`where`: the plug-in, its entry point and its distribution)."""

    def __init__(self, kind: str, group: str, accept: Callable[[str, object], T], forbidden: str = " \t\n",
                 guard: Callable[[T, str], T] | None = None):
        self.kind, self.group, self.accept, self.forbidden, self.guard = kind, group, accept, forbidden, guard
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str, item: T) -> T:
        if not isinstance(name, str) or not name or any(c in name for c in self.forbidden):
            raise BadInput(f"{self.kind} name {name!r}: expected a non-empty name without "
                           f"{' or '.join(repr(c) for c in self.forbidden)}")
        if name in self._items and self._items[name] is not item:
            raise BadInput(f"{self.kind} {name!r}: registered twice (an installed plug-in of {self.group} "
                           f"uses a name that is taken)")
        self._items[name] = item
        return item

    def unregister(self, name: str) -> None:
        """Takes a name registered in code out again (a test's temporary entry)."""
        self._items.pop(name, None)

    def _load_plugins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in sorted(metadata.entry_points(group=self.group), key=lambda e: e.name):
            where = describe_entry_point(self.kind, ep)
            try:
                obj = ep.load()
            except Exception as e:  # an installed package that does not import is the user's to fix
                raise BadInput(f"{where}: cannot be imported ({type(e).__name__}: {first_line(e)})") from None
            try:  # accept may call the plug-in's factory: whatever that raises is the plug-in's fault
                item = self.accept(ep.name, obj)
            except (TypeError, ValueError) as e:
                raise BadInput(f"{where}: {first_line(e)}") from None
            except Exception as e:
                raise BadInput(f"{where}: raised {type(e).__name__}: {first_line(e)}") from None
            self.register(ep.name, self.guard(item, where) if self.guard else item)

    def __getitem__(self, name: str) -> T:
        if name not in self._items:
            self._load_plugins()
        return self._items[name]

    def __contains__(self, name) -> bool:
        if name not in self._items:
            self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._load_plugins()
        return iter(list(self._items))

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._items)


def instance_or_factory(expected: type, what: str) -> Callable[[str, object], object]:
    """An `accept` for registries whose entry points give an `expected` instance or a no-argument function
    returning one."""

    def accept(name: str, obj: object):
        if not isinstance(obj, expected) and callable(obj) and not isinstance(obj, type):
            obj = obj()
        if not isinstance(obj, expected):
            raise TypeError(f"expected {what}, got {type(obj).__name__}")
        return obj

    return accept


def describe_entry_point(kind: str, ep: metadata.EntryPoint) -> str:
    """'KIND plug-in NAME (MODULE:OBJECT from distribution DIST VERSION)': what an error about it names."""
    dist = getattr(ep, "dist", None)
    origin = f"distribution {dist.name} {dist.version}" if dist is not None else f"entry point group {ep.group}"
    return f"{kind} plug-in {ep.name!r} ({ep.value} from {origin})"


def guarded(where: str, fn: Callable, what: str, check: Callable[[Any], str | None] | None = None) -> Callable:
    """`fn` (a plug-in's function) as called before, but what it raises (other than the project's own errors
    and Ctrl-C) and a result `check` refuses (check returns what is wrong, or None) become BadInput naming
    `where` and `what` (e.g. "its transform"): one line and exit 2 (a failed cell inside a run), never a
    traceback from someone else's code."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
        except RobustbenchError:
            raise
        except Exception as e:
            raise BadInput(f"{where}: {what} raised {type(e).__name__}: {first_line(e)}") from None
        problem = check(result) if check is not None else None
        if problem:
            raise BadInput(f"{where}: {what} returned {problem}")
        return result

    return call


def type_name(value: Any) -> str:
    """How a result of the wrong type is quoted: its type and a short repr."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def text_problem(value: Any) -> str | None:
    """Why a plug-in's text is not text this tool can score and write (None when it is): not a str, or a str
    holding a lone surrogate (no UTF-8 output can hold one)."""
    if not isinstance(value, str):
        return f"{type_name(value)}; expected str"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"a str holding a lone surrogate at character {e.start}; expected valid Unicode"
    return None
