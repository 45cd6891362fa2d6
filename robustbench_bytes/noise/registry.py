"""The registry of noises (name -> parameters, one-line definition, transform) and the presets.

Built-in noises are vectorised over code points (`on="codepoints"`: f(cps, rng, **params) -> cps). A plug-in
noise is `on="text"`: f(text, rng, **params) -> text, rng being the document's seeded numpy Generator. An
installed package adds one through the entry-point group `robustbench_bytes.noises` (a Noise, or a function
of no arguments returning one), or a script calls register_noise()."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from robustbench_bytes.plugins import Registry, guarded, instance_or_factory, text_problem, type_name

from . import transforms

KINDS = ("probability", "count", "number")


@dataclass(frozen=True)
class Param:
    """A noise parameter. kind "probability": a float in [0, 1]; "count": an integer in [low, high] (low
    defaults to 1); "number": a float in [low, high]. default None: the parameter is required."""

    name: str
    kind: str
    default: float | int | None = None
    low: float | int | None = None
    high: float | int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name!r}: kind {self.kind!r}; expected one of {', '.join(KINDS)}")

    @property
    def required(self) -> bool:
        return self.default is None

    @property
    def bounds(self) -> tuple[float, float]:
        if self.kind == "probability":
            return 0.0, 1.0
        low = (1 if self.kind == "count" else -math.inf) if self.low is None else self.low
        return low, (math.inf if self.high is None else self.high)

    def describe(self) -> str:
        return self.name if self.required else f"{self.name}={format_value(self.kind, self.default)}"

    def describe_range(self) -> str:
        low, high = self.bounds
        kind = "an integer" if self.kind == "count" else "a number"
        if math.isinf(high):
            return f"{kind} >= {format_value(self.kind, low)}" if math.isfinite(low) else kind
        return f"{kind} in [{format_value(self.kind, low)}, {format_value(self.kind, high)}]"


def format_value(kind: str, value) -> str:
    """How a parameter value is written in a canonical spec: repr of the float (0.05, 1.0; -0.0 as 0.0),
    or the int."""
    return str(int(value)) if kind == "count" else repr(float(value) + 0.0)


@dataclass(frozen=True)
class Noise:
    name: str
    params: tuple[Param, ...]
    definition: str
    transform: Callable
    origin: str = "plugin"  # "paper" (the contract's noises), "extra" (ours beyond the paper), "plugin"
    on: str = "text"  # what transform takes and returns: "text" (str) or "codepoints" (numpy array)

    def __post_init__(self):
        if self.on not in ("text", "codepoints"):
            raise ValueError(f"noise {self.name!r}: on={self.on!r}; expected 'text' or 'codepoints'")
        if not callable(self.transform):
            raise ValueError(f"noise {self.name!r}: transform is not callable")

    def signature(self) -> str:
        return ", ".join(p.describe() for p in self.params) or "-"


MAX_CODEPOINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)




def _codepoints_problem(value) -> str | None:
    if not (isinstance(value, np.ndarray) and value.ndim == 1 and np.issubdtype(value.dtype, np.integer)):
        return f"{type_name(value)}; expected a 1-D integer numpy array of code points"
    if value.size and (int(value.min()) < 0 or int(value.max()) > MAX_CODEPOINT
                       or bool(((value >= SURROGATES[0]) & (value <= SURROGATES[1])).any())):
        return f"an array holding a value that is not a code point; expected 0..{MAX_CODEPOINT:#x} without surrogates"
    return None


def _guard(noise: Noise, where: str) -> Noise:
    """An installed noise whose transform raises or returns the wrong type is one line naming it."""
    check = text_problem if noise.on == "text" else _codepoints_problem
    return replace(noise, transform=guarded(where, noise.transform, "its transform", check))


NOISES: Registry[Noise] = Registry("noise", "robustbench_bytes.noises", instance_or_factory(Noise, "a Noise"),
                                   forbidden=" +,:=\t\n", guard=_guard)


def register_noise(noise: Noise) -> Noise:
    """Adds a noise to the registry (what the entry-point group does for an installed package)."""
    if not isinstance(noise, Noise):
        raise TypeError(f"expected a Noise, got {type(noise).__name__}")
    return NOISES.register(noise.name, noise)


P = Param("p", "probability")
MAX_REPEAT = 64  # copies of one character: bounds the output at 65x the input

for _noise in [
    Noise("clean", (), "the text unchanged (the baseline cell)", transforms.clean, "paper", "codepoints"),
    Noise("drop", (P,), "each character is deleted independently with probability p",
          transforms.drop, "paper", "codepoints"),
    Noise("repeat", (P, Param("max", "count", 3, high=MAX_REPEAT)),
          "each character is selected with probability p; a selected character is followed by k extra "
          "copies, k uniform in 1..max", transforms.repeat, "paper", "codepoints"),
    Noise("antspeak", (), "per line: the non-whitespace characters, uppercased, each followed by one space, "
          "with one leading space; blank lines stay empty; line breaks kept: \"an owl\" -> \" A N O W L \"",
          transforms.antspeak, "paper", "codepoints"),
    Noise("uppercase", (Param("p", "probability", 1.0),),
          "each character is uppercased (as str.upper: ß -> SS) with probability p", transforms.uppercase, "paper", "codepoints"),
    Noise("random_case", (), "each cased character is set to upper or lower case with equal probability",
          transforms.random_case, "paper", "codepoints"),
    Noise("flip_case", (P,), "each cased character has its case swapped (as str.swapcase) with probability p",
          transforms.flip_case, "paper", "codepoints"),
    Noise("swap", (P,), "left to right, each adjacent pair not yet swapped is swapped with probability p",
          transforms.swap, "paper", "codepoints"),
    Noise("keyboard", (P,), "each letter or digit is replaced with probability p by a uniformly chosen "
          "neighbouring key on a US QWERTY keyboard (case kept)", transforms.keyboard, "extra", "codepoints"),
    Noise("insert", (P,), "after each character, with probability p, a random printable ASCII character "
          "(U+0020..U+007E, uniform) is inserted", transforms.insert, "extra", "codepoints"),
    Noise("whitespace", (Param("p_del", "probability", 0.0), Param("p_ins", "probability", 0.0)),
          "each space (U+0020) is deleted with probability p_del; after each non-whitespace character a "
          "space is inserted with probability p_ins", transforms.whitespace, "extra", "codepoints"),
]:
    register_noise(_noise)

# name -> canonical specs (a test checks that they are canonical)
PRESETS: dict[str, list[str]] = {
    "paper": ["drop:p=0.05", "drop:p=0.3", "repeat:p=0.05,max=3", "repeat:p=0.3,max=3", "antspeak",
              "uppercase:p=0.05", "uppercase:p=0.3", "random_case", "swap:p=0.05", "swap:p=0.3"],
    "byt5": ["drop:p=0.1", "repeat:p=0.2,max=3", "antspeak", "uppercase:p=1.0", "random_case"],
    "blt": ["antspeak", "drop:p=0.1", "random_case", "repeat:p=0.2,max=4", "uppercase:p=1.0"],
    "typos": ["keyboard:p=0.05", "insert:p=0.05", "whitespace:p_del=0.1,p_ins=0.05"],
}

# each preset and where its rates come from (`robustbench noise list` prints these)
PRESET_DESCRIPTIONS: dict[str, str] = {
    "paper": "MambaByte's robustness table (arXiv 2401.13660): drop, repeat, uppercase and swap at p=0.05 and "
             "0.3, antspeak, random case",
    "byt5": "ByT5's noise settings (arXiv 2105.13626): drop 10%, repeat 20% (1-3 extra copies), antspeak, "
            "uppercase, random case",
    "blt": "BLT's noised HellaSwag (arXiv 2412.09871, Table 3): antspeak, drop 10%, random case 50/50, uppercase, "
           "and repeat 20% 'up to a maximum of four times', read as 1-4 extra copies (max=4): the phrase counts "
           "repetitions added, and the other reading (1-3 extra) is ByT5's repeat:p=0.2,max=3; the protocol: "
           "`run --task T --suite blt --noise-target all`",
    "typos": "typing errors beyond the paper",
}
