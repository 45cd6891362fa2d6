"""Text as numpy arrays of Unicode code points, and per-code-point lookup tables built from str's own
methods (so case noises follow str.upper / str.lower / str.swapcase exactly, ß -> SS included)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

N_CODEPOINTS = 0x110000
SPACE = 0x20


def to_codepoints(text: str) -> np.ndarray:
    """The code points of `text`, read-only (transforms build new arrays), in the narrowest of three
    representations that every noise keeps closed, so all three give the same output:
    uint8 for ASCII (ASCII case maps, keyboard keys and inserted characters are ASCII), uint16 for text
    within the Basic Multilingual Plane (the case of a BMP character is in the BMP), else uint32."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    # surrogatepass: a str with lone surrogates (never produced by UTF-8 decoding) still round-trips;
    # such a str takes the uint32 path, where its surrogates stay single code points.
    units = np.frombuffer(text.encode("utf-16-le", "surrogatepass"), dtype="<u2")
    if len(units) == len(text) and not ((units - np.uint16(0xD800)) < 0x800).any():
        return units
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def from_codepoints(cps: np.ndarray) -> str:
    if cps.dtype == np.uint8:
        return cps.tobytes().decode("ascii")
    if int(cps.max(initial=0)) < 256:  # Latin-1 decodes at memcpy speed
        return cps.astype(np.uint8).tobytes().decode("latin-1")
    if cps.dtype == np.uint16:  # no surrogates: to_codepoints checked, no noise makes one
        return cps.astype("<u2", copy=False).tobytes().decode("utf-16-le")
    return cps.astype("<u4", copy=False).tobytes().decode("utf-32-le", "surrogatepass")


def is_narrow(cps: np.ndarray) -> bool:
    """True for the uint8 (ASCII) representation."""
    return cps.dtype == np.uint8


def as_bytes(cps: np.ndarray) -> bytes:
    """The bytes of a uint8 array, without a copy when it is a whole bytes object (to_codepoints' output)."""
    if isinstance(cps.base, bytes) and len(cps.base) == cps.nbytes and cps.flags.c_contiguous:
        return cps.base
    return cps.tobytes()


@functools.cache
def _all_codepoints() -> np.ndarray:
    """Every code point except U+0000 and the surrogates (which str methods leave alone anyway)."""
    return np.concatenate([np.arange(1, 0xD800, dtype=np.uint32),
                           np.arange(0xE000, N_CODEPOINTS, dtype=np.uint32)])


@functools.cache
def _all_characters_separated() -> str:
    """Every code point of _all_codepoints() followed by U+0000: one string, so a str method maps
    1.1M characters at C speed. U+0000 is uncased and not case-ignorable, so no mapping sees a
    neighbour (Greek final sigma stays the per-character σ)."""
    cps = _all_codepoints()
    interleaved = np.zeros(2 * len(cps), dtype="<u4")
    interleaved[0::2] = cps
    return interleaved.tobytes().decode("utf-32-le")


@dataclass(frozen=True, eq=False)
class CharMap:
    """The per-character result of a str method: `single[c]` where the result is one code point,
    `special[c]` (an array) where it is longer, e.g. 'ß'.upper() == 'SS'."""

    name: str               # the str (and bytes) method: upper, lower, swapcase
    single: np.ndarray      # uint32[N_CODEPOINTS]; c itself where special
    is_special: np.ndarray  # bool[N_CODEPOINTS]
    special: dict[int, np.ndarray]  # none is ASCII: ASCII maps to ASCII, one for one

    @functools.cached_property
    def single_bmp(self) -> np.ndarray:
        """`single` for the BMP as uint16 (the case mappings of BMP characters stay in the BMP)."""
        table = self.single[:0x10000]
        assert int(table.max()) < 0x10000
        return table.astype(np.uint16)

    def lookup(self, cps: np.ndarray) -> np.ndarray:
        """single[cps], in cps' dtype."""
        return self.single_bmp[cps] if cps.dtype == np.uint16 else self.single[cps]

    def changes(self) -> np.ndarray:
        """bool[N_CODEPOINTS]: True where the mapping changes the character."""
        return (self.single != np.arange(N_CODEPOINTS, dtype=np.uint32)) | self.is_special


@functools.cache
def char_map(method: str) -> CharMap:
    """Table of `chr(c).<method>()` for every code point c (method: upper, lower, swapcase)."""
    cps = _all_codepoints()
    mapped = to_codepoints(getattr(_all_characters_separated(), method)())
    separators = np.flatnonzero(mapped == 0)
    assert len(separators) == len(cps), "a case mapping produced U+0000"
    starts = np.concatenate([[0], separators[:-1] + 1])
    lengths = separators - starts
    single = np.arange(N_CODEPOINTS, dtype=np.uint32)
    is_one = lengths == 1
    single[cps[is_one]] = mapped[starts[is_one]]
    is_special = np.zeros(N_CODEPOINTS, dtype=bool)
    special = {}
    for i in np.flatnonzero(~is_one):
        special[int(cps[i])] = mapped[starts[i]:separators[i]].copy()
        is_special[cps[i]] = True
    return CharMap(method, single, is_special, special)


@functools.cache
def cased_table() -> np.ndarray:
    """bool[N_CODEPOINTS]: characters that upper or lower case changes (the ones case noises touch)."""
    return char_map("upper").changes() | char_map("lower").changes()


@functools.cache
def whitespace_table() -> np.ndarray:
    """bool[N_CODEPOINTS]: str.isspace()."""
    table = np.zeros(N_CODEPOINTS, dtype=bool)
    found = [m.start() for m in re.finditer(r"\s", _all_characters_separated())]
    table[_all_codepoints()[np.asarray(found, dtype=np.int64) // 2]] = True
    return table


# The characters str.splitlines() breaks lines at.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@functools.cache
def line_break_table() -> np.ndarray:
    table = np.zeros(N_CODEPOINTS, dtype=bool)
    table[[ord(c) for c in LINE_BREAKS]] = True
    return table


@functools.cache
def _ascii_translation(table_name: str) -> bytes:
    """A bytes.translate table mapping each byte < 0x80 to 1 where the named table holds, else 0."""
    table = {"whitespace": whitespace_table, "line_break": line_break_table}[table_name]()
    return bytes(table[:256].astype(np.uint8))


def _ascii_lookup(cps: np.ndarray, table_name: str) -> np.ndarray:
    """table[cps] for a uint8 array, at bytes.translate speed."""
    return np.frombuffer(as_bytes(cps).translate(_ascii_translation(table_name)), dtype=bool)


def is_whitespace(cps: np.ndarray) -> np.ndarray:
    """str.isspace() per element."""
    if is_narrow(cps):
        return _ascii_lookup(cps, "whitespace")
    return whitespace_table()[cps]


def is_line_break(cps: np.ndarray) -> np.ndarray:
    """Whether each element is one of LINE_BREAKS."""
    if is_narrow(cps):
        return _ascii_lookup(cps, "line_break")
    return line_break_table()[cps]


def map_chars(cps: np.ndarray, choices: list[tuple[np.ndarray | None, str]]
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """Replace cps[i] by chr(cps[i]).<method>() for the (method, mask) whose mask selects i (masks are
    disjoint; None selects all). Returns (output, lengths): lengths[i] is how many output code points
    cps[i] became (None when all are 1). Only the rare expanding characters (ß -> SS) are handled one by one."""
    if is_narrow(cps):  # bytes' ASCII case methods agree with str's on ASCII; no table needed
        data, out = as_bytes(cps), cps
        for mask, method in choices:
            mapped = np.frombuffer(getattr(data, method)(), dtype=np.uint8)
            out = mapped if mask is None else np.where(mask, mapped, out)
        return out, None
    out = cps
    expanding = []
    # no ASCII character expands: look for expanding ones among the (usually few) others only
    non_ascii = np.flatnonzero(cps >= 128)
    for mask, method in choices:
        cmap = char_map(method)
        mapped = cmap.lookup(cps)
        out = mapped if mask is None else np.where(mask, mapped, out)
        if len(non_ascii):
            candidates = non_ascii if mask is None else non_ascii[mask[non_ascii]]
            hit = candidates[cmap.is_special[cps[candidates]]]
            if len(hit):
                expanding.append((hit, cmap))
    if not expanding:
        return out, None
    positions = np.concatenate([hit for hit, _ in expanding])
    replacements = [cmap.special[int(c)] for hit, cmap in expanding for c in cps[hit]]
    order = np.argsort(positions, kind="stable")
    positions = positions[order]
    replacements = [replacements[k] for k in order]
    lengths = np.ones(len(cps), dtype=np.int64)
    lengths[positions] = [len(r) for r in replacements]
    return place(out, lengths, positions, replacements), lengths


def place(single: np.ndarray, lengths: np.ndarray, positions: np.ndarray,
          replacements: list[np.ndarray]) -> np.ndarray:
    """Lay out element i as `single[i]` repeated lengths[i] times, except that element positions[k]
    (sorted) becomes replacements[k] (of length lengths[positions[k]])."""
    out = np.repeat(single, lengths)
    if len(positions) == 0:
        return out
    flat = np.concatenate(replacements)
    rep_lengths = lengths[positions]
    out_starts = np.cumsum(lengths) - lengths
    offsets_in_flat = np.cumsum(rep_lengths) - rep_lengths
    index = np.repeat(out_starts[positions] - offsets_in_flat, rep_lengths) + np.arange(len(flat))
    out[index] = flat
    return out
