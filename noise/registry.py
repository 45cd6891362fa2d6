"""The registry of noises (name -> parameters, one-line definition, transform) and the presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import transforms


@dataclass(frozen=True)
class Param:
    name: str
    kind: str                       # "probability" (a float in [0, 1]) or "count" (an integer >= 1)
    default: float | int | None = None  # None: required

    @property
    def required(self) -> bool:
        return self.default is None

    def describe(self) -> str:
        return self.name if self.required else f"{self.name}={format_value(self.kind, self.default)}"


def format_value(kind: str, value) -> str:
    """How a parameter value is written in a canonical spec: repr of the float (0.05, 1.0), or the int."""
    return str(int(value)) if kind == "count" else repr(float(value))


@dataclass(frozen=True)
class Noise:
    name: str
    params: tuple[Param, ...]
    definition: str
    transform: Callable
    origin: str  # "paper" (the contract's noises) or "extra"

    def signature(self) -> str:
        return ", ".join(p.describe() for p in self.params) or "-"


P = Param("p", "probability")

NOISES: dict[str, Noise] = {n.name: n for n in [
    Noise("clean", (), "the text unchanged (the baseline cell)", transforms.clean, "paper"),
    Noise("drop", (P,), "each character is deleted independently with probability p",
          transforms.drop, "paper"),
    Noise("repeat", (P, Param("max", "count", 3)),
          "each character is selected with probability p; a selected character is followed by k extra "
          "copies, k uniform in 1..max", transforms.repeat, "paper"),
    Noise("antspeak", (), "per line: the non-whitespace characters, uppercased, each followed by one space, "
          "with one leading space; blank lines stay empty; line breaks kept: \"an owl\" -> \" A N O W L \"",
          transforms.antspeak, "paper"),
    Noise("uppercase", (Param("p", "probability", 1.0),),
          "each character is uppercased (as str.upper: ß -> SS) with probability p", transforms.uppercase, "paper"),
    Noise("random_case", (), "each cased character is set to upper or lower case with equal probability",
          transforms.random_case, "paper"),
    Noise("flip_case", (P,), "each cased character has its case swapped (as str.swapcase) with probability p",
          transforms.flip_case, "paper"),
    Noise("swap", (P,), "left to right, each adjacent pair not yet swapped is swapped with probability p",
          transforms.swap, "paper"),
    Noise("keyboard", (P,), "each letter or digit is replaced with probability p by a uniformly chosen "
          "neighbouring key on a US QWERTY keyboard (case kept)", transforms.keyboard, "extra"),
    Noise("insert", (P,), "after each character, with probability p, a random printable ASCII character "
          "(U+0020..U+007E, uniform) is inserted", transforms.insert, "extra"),
    Noise("whitespace", (Param("p_del", "probability", 0.0), Param("p_ins", "probability", 0.0)),
          "each space (U+0020) is deleted with probability p_del; after each non-whitespace character a "
          "space is inserted with probability p_ins", transforms.whitespace, "extra"),
]}

# name -> canonical specs (a test checks that they are canonical)
PRESETS: dict[str, list[str]] = {
    "paper": ["drop:p=0.05", "drop:p=0.3", "repeat:p=0.05,max=3", "repeat:p=0.3,max=3", "antspeak",
              "uppercase:p=0.05", "uppercase:p=0.3", "random_case", "swap:p=0.05", "swap:p=0.3"],
    "byt5": ["drop:p=0.1", "repeat:p=0.2,max=3", "antspeak", "uppercase:p=1.0", "random_case"],
    "blt": ["antspeak", "drop:p=0.1", "random_case", "repeat:p=0.2,max=4", "uppercase:p=1.0"],
    "typos": ["keyboard:p=0.05", "insert:p=0.05", "whitespace:p_del=0.1,p_ins=0.05"],
}

PRESET_DESCRIPTIONS: dict[str, str] = {
    "paper": "MambaByte's robustness table",
    "byt5": "ByT5's noise settings",
    "blt": "BLT's noise settings",
    "typos": "typing errors beyond the paper",
}
