"""The noise transforms, each vectorised over an array of code points (codepoints.to_codepoints).

Every transform is `f(cps, rng, **params) -> cps` and never writes into `cps`. The random draws of each
are documented beside it. "An event per position" over n positions means: take
rng.bit_generator.random_raw(ceil(n / 2)) (PCG64's raw 64-bit outputs), read them as little-endian
32-bit integers u[0..n-1] (low half first); the event at i happens iff u[i] < floor(p * 2**32).
p=0 returns the input without drawing; p=1 selects everything without drawing.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .codepoints import N_CODEPOINTS, SPACE, as_bytes, is_line_break, is_narrow, is_whitespace, map_chars
from .keyboard import neighbour_arrays


def events(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """n independent events of probability p (see the module docstring)."""
    if p >= 1:
        return np.ones(n, dtype=bool)
    raw = rng.bit_generator.random_raw((n + 1) // 2).astype("<u8", copy=False)
    return raw.view("<u4")[:n] < np.uint32(math.floor(p * 2**32))


def insert_after(cps: np.ndarray, positions: np.ndarray, extra: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """cps with extra[j] elements inserted after cps[positions[j]] (positions sorted, distinct), taken in
    order from `fill` (len(fill) == extra.sum()). Works on the sparse positions plus one masked copy."""
    if len(fill) == 0:
        return cps
    # fill[f], inserted after cps[positions[j]], lands f + 1 places after positions[j]: the f earlier
    # insertions plus the element itself push it right
    slots = np.repeat(positions + 1, extra) + np.arange(len(fill))
    out = np.empty(len(cps) + len(fill), dtype=cps.dtype)
    is_old = np.ones(len(out), dtype=bool)
    is_old[slots] = False
    out[is_old] = cps
    out[slots] = fill
    return out


def clean(cps, rng):
    return cps


def drop(cps, rng, p):
    """Draws: an event per position."""
    if p == 0:
        return cps
    return cps[~events(rng, len(cps), p)]


def repeat(cps, rng, p, max):  # noqa: A002  (the contract's parameter name)
    """Draws: an event per position, then k = integers(1, max, endpoint=True) per selected position, left
    to right."""
    if p == 0:
        return cps
    if p < 1 and len(cps) >= FUSED_REPEAT_MIN:
        return _repeat_fused(cps, rng, p, max)
    selected = np.flatnonzero(events(rng, len(cps), p))
    k = rng.integers(1, max, endpoint=True, size=len(selected))
    if 8 * len(selected) < len(cps):  # sparse: touch only the selected positions (same output)
        return insert_after(cps, selected, k, np.repeat(cps[selected], k))
    return _repeat_blocked(cps, selected, k)


# From this many code points on, repeat() runs as one compiled loop (1.8x the numpy path's speed at p=0.3). numba
# costs about a second to load once per process: below this size, the numpy path is done before.
FUSED_REPEAT_MIN = 1 << 22


def _repeat_fused(cps, rng, p, max):  # noqa: A002
    """repeat() with the same draws (an event per position from the raw outputs, then the k's) and one pass that
    writes each code point and its copies straight into the output."""
    n = len(cps)
    raw = rng.bit_generator.random_raw((n + 1) // 2).astype("<u8", copy=False)
    u = raw.view("<u4")[:n]
    threshold = np.uint32(math.floor(p * 2**32))
    k = rng.integers(1, max, endpoint=True, size=int(np.count_nonzero(u < threshold)))
    out = np.empty(n + int(k.sum()), dtype=cps.dtype)
    _repeat_loop()(cps, u, threshold, k, out)
    return out


@functools.lru_cache(maxsize=1)
def _repeat_loop():
    """The compiled loop of _repeat_fused (numba is imported only when a text is that large)."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def fill(cps, u, threshold, k, out):
        j = 0
        s = 0
        for i in range(cps.shape[0]):
            c = cps[i]
            out[j] = c
            j += 1
            if u[i] < threshold:
                for _ in range(k[s]):
                    out[j] = c
                    j += 1
                s += 1

    return fill


def _repeat_blocked(cps: np.ndarray, selected: np.ndarray, k: np.ndarray, block: int = 1 << 17) -> np.ndarray:
    """np.repeat(cps, 1 + k at selected) block by block, so the counts stay in cache."""
    bounds = np.searchsorted(selected, np.arange(0, len(cps) + block, block))
    pieces = []
    for b, start in enumerate(range(0, len(cps), block)):
        counts = np.ones(min(block, len(cps) - start), dtype=np.intp)
        lo, hi = bounds[b], bounds[b + 1]
        counts[selected[lo:hi] - start] += k[lo:hi]
        pieces.append(np.repeat(cps[start:start + block], counts))
    return np.concatenate(pieces) if pieces else cps


ANTSPEAK_BLOCK = 1 << 20  # code points per block: antspeak is line-local, so blocks cut after a "\n" are exact


def antspeak(cps, rng):
    """Per line: ' ' + each non-whitespace character uppercased and followed by ' '; lines without such
    characters stay empty; line breaks (str.splitlines' set) are kept as they are. No randomness.
    Long texts go through in blocks of about ANTSPEAK_BLOCK code points cut after a newline, so the
    working memory does not grow with the text."""
    if len(cps) <= ANTSPEAK_BLOCK:
        return _antspeak_block(cps)
    newlines = np.flatnonzero(cps == 10)
    cuts = np.unique(newlines[np.minimum(np.searchsorted(newlines, np.arange(ANTSPEAK_BLOCK, len(cps),
                                                                          ANTSPEAK_BLOCK)), len(newlines) - 1)]) + 1 \
        if len(newlines) else np.array([], dtype=np.int64)
    bounds = [0, *[int(c) for c in cuts if 0 < c < len(cps)], len(cps)]
    return np.concatenate([_antspeak_block(cps[a:b]) for a, b in zip(bounds, bounds[1:])])


def _antspeak_block(cps):
    if is_narrow(cps):  # ASCII: one bytes.translate uppercases and deletes the non-break whitespace
        upper_table, whitespace, break_flags = _antspeak_ascii_tables()
        kept = as_bytes(cps).translate(upper_table, whitespace)
        return _antspeak_single(np.frombuffer(kept, dtype=np.uint8),
                                np.frombuffer(kept.translate(break_flags), dtype=bool))
    kind = _antspeak_kinds()[cps]  # 0 whitespace, 1 character, 2 line break
    keep = kind != 0
    kept = cps[keep]
    is_break = kind[keep] == 2
    # line breaks are uncased: uppercasing every kept element leaves them alone
    upper, seg_len = map_chars(kept, [(None, "upper")])
    if seg_len is None:
        return _antspeak_single(upper, is_break)
    return _antspeak_expanding(upper, seg_len, is_break)


@functools.cache
def _antspeak_ascii_tables() -> tuple[bytes, bytes, bytes]:
    """(bytes.upper table, the whitespace bytes that are not line breaks, byte -> 1 if a line break)."""
    ascii_cps = np.arange(128, dtype=np.uint32)
    breaks, spaces = is_line_break(ascii_cps), is_whitespace(ascii_cps)
    return (bytes(range(256)).upper(), bytes(np.flatnonzero(spaces & ~breaks).astype(np.uint8)),
            bytes(np.concatenate([breaks, np.zeros(128, dtype=bool)]).astype(np.uint8)))


@functools.cache
def _antspeak_kinds() -> np.ndarray:
    """uint8[N_CODEPOINTS]: 0 whitespace (removed), 1 character, 2 line break (kept)."""
    every = np.arange(N_CODEPOINTS, dtype=np.uint32)
    return np.where(is_line_break(every), 2, np.where(is_whitespace(every), 0, 1)).astype(np.uint8)


def _antspeak_single(upper: np.ndarray, is_break: np.ndarray) -> np.ndarray:
    """Every element one code point: element j emits (upper[j], ' '), the space dropped for a line break
    unless a character follows it (that space leads the next line); plus a leading space when the text
    starts with a character."""
    m = len(upper)
    if m == 0:
        return upper
    pairs = np.empty((m, 2), dtype=upper.dtype)
    pairs[:, 0] = upper
    pairs[:, 1] = SPACE
    keep = np.ones((m, 2), dtype=bool)
    keep[:-1, 1] = ~is_break[:-1] | ~is_break[1:]
    keep[-1, 1] = not is_break[-1]
    out = pairs.ravel()[keep.ravel()]
    if not is_break[0]:
        out = np.concatenate([np.array([SPACE], dtype=upper.dtype), out])
    return out


def _antspeak_expanding(upper: np.ndarray, seg_len: np.ndarray, is_break: np.ndarray) -> np.ndarray:
    """The general layout, where some characters uppercase to several (ß -> SS)."""
    is_char = ~is_break
    after_break = np.ones(len(is_break), dtype=bool)
    after_break[1:] = is_break[:-1]
    first_in_line = is_char & after_break
    lengths = seg_len + first_in_line + is_char
    out = np.full(int(lengths.sum()), SPACE, dtype=upper.dtype)
    seg_start = np.cumsum(lengths) - lengths + first_in_line
    seg_offset = np.cumsum(seg_len) - seg_len
    out[np.repeat(seg_start - seg_offset, seg_len) + np.arange(len(upper))] = upper
    return out


def uppercase(cps, rng, p):
    """As str.upper per character (ß -> SS). Draws: an event per position (none for p=1)."""
    if p == 0:
        return cps
    return map_chars(cps, [(None if p >= 1 else events(rng, len(cps), p), "upper")])[0]


def random_case(cps, rng):
    """Draws: one bit per position (numpy's unpackbits of rng.bytes((n + 7) // 8)); 1 -> str.upper,
    0 -> str.lower. Uncased characters map to themselves either way."""
    n = len(cps)
    bits = np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), dtype=np.uint8), count=n).view(bool)
    if is_narrow(cps):  # ASCII: one np.where between the upper- and lower-cased bytes
        data = as_bytes(cps)
        return np.where(bits, np.frombuffer(data.upper(), np.uint8), np.frombuffer(data.lower(), np.uint8))
    return map_chars(cps, [(bits, "upper"), (~bits, "lower")])[0]


def flip_case(cps, rng, p):
    """As str.swapcase per selected character (uncased ones are unchanged). Draws: an event per position."""
    if p == 0:
        return cps
    return map_chars(cps, [(None if p >= 1 else events(rng, len(cps), p), "swapcase")])[0]


def swap_positions(decisions: np.ndarray) -> np.ndarray:
    """Left-to-right rule, vectorised: pair (i, i+1) swaps iff decisions[i] and position i was not just
    swapped with i-1. In a run of consecutive True decisions that is every other pair from the run's start."""
    d = np.flatnonzero(decisions)
    if len(d) == 0:
        return d
    k = np.arange(len(d))
    new_run = np.ones(len(d), dtype=bool)
    new_run[1:] = np.diff(d) != 1
    run_start = np.maximum.accumulate(np.where(new_run, k, 0))
    return d[((k - run_start) & 1) == 0]


def swap(cps, rng, p):
    """Draws: an event per adjacent pair (i, i+1), i = 0..n-2, whether or not the pair is still free."""
    if p == 0 or len(cps) < 2:
        return cps
    left = swap_positions(events(rng, len(cps) - 1, p))
    out = cps.copy()
    out[left] = cps[left + 1]
    out[left + 1] = cps[left]
    return out


def keyboard(cps, rng, p):
    """Draws: an event per position, then integers(0, number of neighbours) per selected key, left to right."""
    if p == 0:
        return cps
    counts, choices = neighbour_arrays()
    hit = np.flatnonzero(events(rng, len(cps), p))
    hit = hit[(cps[hit] < 128)]
    hit = hit[counts[cps[hit]] > 0]
    out = cps.copy()
    out[hit] = choices[cps[hit], rng.integers(0, counts[cps[hit]])]
    return out


def insert(cps, rng, p):
    """Draws: an event per position, then integers(0x20, 0x7F) per selected position, left to right."""
    if p == 0:
        return cps
    selected = np.flatnonzero(events(rng, len(cps), p))
    fill = rng.integers(0x20, 0x7F, size=len(selected), dtype=np.uint8).astype(cps.dtype)
    return insert_after(cps, selected, np.ones(len(selected), dtype=np.int64), fill)


def whitespace(cps, rng, p_del, p_ins):
    """Draws: an event per position for deletion (if p_del > 0), then one per position for insertion
    (if p_ins > 0). Deletion applies to spaces, insertion after non-whitespace characters (so no position
    is both)."""
    n = len(cps)
    delete = events(rng, n, p_del) & (cps == SPACE) if p_del > 0 else None
    add = events(rng, n, p_ins) & ~is_whitespace(cps) if p_ins > 0 else None
    out = cps
    if delete is not None:
        out = cps[~delete]
        if add is not None:
            add = add[~delete]
    if add is not None:
        positions = np.flatnonzero(add)
        out = insert_after(out, positions, np.ones(len(positions), dtype=np.int64),
                           np.full(len(positions), SPACE, dtype=cps.dtype))
    return out
