"""Registries of named plug-ins (noises, model loaders, corpora, tasks): the built-ins register in code, installed
packages through a Python entry-point group, found on first use."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

from robustbench_bytes.errors import BadInput

T = TypeVar("T")


class Registry(Mapping, Generic[T]):
    """name -> T. `accept(name, obj)` turns what an entry point loads (the object itself, or a function of no
    arguments returning it) into a T, or raises TypeError/ValueError saying what was expected."""

    def __init__(self, kind: str, group: str, accept: Callable[[str, object], T], forbidden: str = " \t\n"):
        self.kind, self.group, self.accept, self.forbidden = kind, group, accept, forbidden
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

    def _load_plugins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in sorted(metadata.entry_points(group=self.group), key=lambda e: e.name):
            where = f"{self.kind} plug-in {ep.name!r} ({ep.value}, entry point group {self.group})"
            try:
                obj = ep.load()
            except Exception as e:  # an installed package that does not import is the user's to fix
                raise BadInput(f"{where}: cannot be imported ({type(e).__name__}: {e})") from None
            try:
                item = self.accept(ep.name, obj)
            except (TypeError, ValueError) as e:
                raise BadInput(f"{where}: {e}") from None
            self.register(ep.name, item)

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
