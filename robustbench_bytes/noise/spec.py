"""The SPEC grammar: `name[:k=v[,k=v]...]`, `A+B` applies A then B, a preset name expands to several
specs. Canonical form: parameters in the registry's order with defaults filled in, values written by
registry.format_value, parts joined by '+', `clean` parts dropped (all clean -> "clean")."""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

from .errors import NoiseSpecError
from .registry import NOISES, PRESETS, Noise, Param, format_value

# '+' joins parts; the '+' of an exponent (1e+5) does not.
_PART_SEPARATOR = re.compile(r"(?<![0-9][eE])\+")


@dataclass(frozen=True)
class Part:
    noise: Noise
    params: tuple[tuple[str, float | int], ...]  # in the registry's order

    @property
    def canonical(self) -> str:
        if not self.params:
            return self.noise.name
        kinds = {p.name: p.kind for p in self.noise.params}
        return self.noise.name + ":" + ",".join(f"{k}={format_value(kinds[k], v)}" for k, v in self.params)


def is_preset(name: str) -> bool:
    return isinstance(name, str) and name.strip() in PRESETS


def _suggest(name: str) -> str:
    known = sorted(NOISES) + sorted(PRESETS)
    close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.6)
    if close:
        return f" (did you mean: {', '.join(close)}?)"
    return f" (known noises: {', '.join(sorted(NOISES))}; presets: {', '.join(sorted(PRESETS))})"


def _parse_value(spec: str, noise: Noise, param: Param, raw: str, single: bool):
    fault = f"noise spec {spec!r}: parameter {param.name}" + ("" if single else f" of {noise.name}")
    low, high = param.bounds
    if param.kind == "count":
        try:
            value = int(raw)
        except ValueError:
            raise NoiseSpecError(f"{fault}: {raw!r} is not an integer") from None
    else:
        try:
            value = float(raw) + 0.0  # -0.0 is 0.0
        except ValueError:
            raise NoiseSpecError(f"{fault}: {raw!r} is not a number") from None
    if param.kind == "probability" and not (0.0 <= value <= 1.0):  # also rejects nan
        raise NoiseSpecError(f"{fault}: {raw} is outside [0, 1]")
    if not value >= low:
        raise NoiseSpecError(f"{fault}: {raw} is below {format_value(param.kind, low)} "
                             f"(expected {param.describe_range()})")
    if not value <= high:
        raise NoiseSpecError(f"{fault}: {raw} is above {format_value(param.kind, high)} "
                             f"(expected {param.describe_range()})")
    return value


def _parse_part(spec: str, text: str, single: bool) -> Part:
    """One part of `spec`; `single`: the spec has no other part (messages then name the noise once)."""
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise NoiseSpecError(f"noise spec {spec!r}: missing noise name before ':'")
    where = "" if spec.strip() == name else f"noise spec {spec!r}: "  # the spec is the name: say it once
    if name in PRESETS:
        raise NoiseSpecError(f"{where}{name!r} is a preset of {len(PRESETS[name])} specs, "
                             f"not a single noise (one of them: {PRESETS[name][0]})")
    noise = NOISES.get(name)
    if noise is None:
        raise NoiseSpecError(f"{where}unknown noise {name!r}{_suggest(name)}")
    of_name = "" if single else f" of {name}"
    by_name = {p.name: p for p in noise.params}
    given: dict[str, float | int] = {}
    if sep and not rest.strip():
        raise NoiseSpecError(f"noise spec {spec!r}: nothing after ':' (expected k=v)")
    for item in rest.split(",") if sep else []:
        key, eq, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not eq or not key or not raw:
            raise NoiseSpecError(f"noise spec {spec!r}: malformed parameter {item.strip()!r} (expected k=v)")
        if key not in by_name:
            expected = ", ".join(by_name) or "no parameters"
            raise NoiseSpecError(f"noise spec {spec!r}: unknown parameter {key!r}{of_name} (expected: {expected})")
        if key in given:
            raise NoiseSpecError(f"noise spec {spec!r}: parameter {key}{of_name} given twice")
        given[key] = _parse_value(spec, noise, by_name[key], raw, single)
    params = []
    for p in noise.params:
        if p.name in given:
            params.append((p.name, given[p.name]))
        elif p.required:
            raise NoiseSpecError(f"{where}{name} needs parameter {p.name} (e.g. {name}:{p.name}=0.1)")
        else:
            params.append((p.name, p.default))
    return Part(noise, tuple(params))


@functools.lru_cache(maxsize=1024)
def parse(spec: str) -> tuple[Part, ...]:
    """The parts of a (non-preset) spec, `clean` parts dropped; () for the identity."""
    if not isinstance(spec, str):
        raise NoiseSpecError(f"noise spec {spec!r}: expected a string")
    if not spec.strip():
        raise NoiseSpecError(f"noise spec {spec!r}: empty (expected name[:k=v,...], e.g. drop:p=0.1)")
    texts = _PART_SEPARATOR.split(spec)
    for t in texts:
        if not t.strip():
            raise NoiseSpecError(f"noise spec {spec!r}: empty part around '+'")
    parts = [_parse_part(spec, t, single=len(texts) == 1) for t in texts]
    return tuple(p for p in parts if p.noise.name != "clean")


@functools.lru_cache(maxsize=1024)
def canonical(spec: str) -> str:
    """The canonical string of a spec: 'drop:p=.050' -> 'drop:p=0.05', 'repeat:p=0.1' -> 'repeat:p=0.1,max=3'."""
    parts = parse(spec)
    return "+".join(p.canonical for p in parts) if parts else "clean"


def expand(spec: str) -> list[str]:
    """A preset name -> its canonical specs; any other spec -> [its canonical form]."""
    if is_preset(spec):
        return list(PRESETS[spec.strip()])
    return [canonical(spec)]
