"""The per-code-point tables agree with str's own methods on every code point."""

import sys

import numpy as np
import pytest

from robustbench_bytes import noise
from robustbench_bytes.noise.codepoints import (LINE_BREAKS, N_CODEPOINTS, cased_table, char_map,
                                                from_codepoints, is_line_break, is_whitespace, to_codepoints)

ALL = [c for c in range(1, N_CODEPOINTS) if not 0xD800 <= c <= 0xDFFF]


@pytest.mark.parametrize("method", ["upper", "lower", "swapcase"])
def test_char_map_equals_str_method_on_every_code_point(method):
    cmap = char_map(method)
    mismatches = []
    for c in ALL:
        expected = getattr(chr(c), method)()
        got = "".join(map(chr, cmap.special[c])) if cmap.is_special[c] else chr(cmap.single[c])
        if got != expected:
            mismatches.append(hex(c))
    assert not mismatches, mismatches[:20]
    assert cmap.is_special[0xDF] == (method != "lower")  # ß -> SS under upper and swapcase


def test_whitespace_and_line_breaks_match_str():
    wide = np.array(ALL, dtype=np.uint32)
    assert [int(c) for c in wide[is_whitespace(wide)]] == [c for c in ALL if chr(c).isspace()]
    breaks = [int(c) for c in wide[is_line_break(wide)]]
    assert breaks == [c for c in ALL if len(("a" + chr(c) + "b").splitlines()) == 2]
    assert breaks == sorted(map(ord, LINE_BREAKS))
    narrow = np.arange(128, dtype=np.uint8)
    assert list(is_whitespace(narrow)) == [chr(c).isspace() for c in range(128)]
    assert list(is_line_break(narrow)) == [chr(c) in LINE_BREAKS for c in range(128)]


def test_cased_means_changed_by_upper_or_lower():
    table = cased_table()
    for c in [ord("a"), ord("Z"), 0xDF, 0x130, 0x3A3, 0x1C5, 0x1E921]:
        assert table[c]
    for c in [ord("1"), ord(" "), ord("日"), 0x1F600, 0x0301]:
        assert not table[c]


def test_codepoint_round_trip_keeps_everything():
    text = "plain ascii"
    assert to_codepoints(text).dtype == np.uint8
    assert from_codepoints(to_codepoints(text)) == text
    text = "".join(map(chr, range(1, 0xD800, 7))) + "\uffff"
    assert to_codepoints(text).dtype == np.uint16
    assert from_codepoints(to_codepoints(text)) == text
    for text in [text + "😀\U0010FFFF", "lone \ud800 surrogate", "pair-like \ud83d\ude00 made of two"]:
        cps = to_codepoints(text)
        assert cps.dtype == np.uint32 and len(cps) == len(text)
        assert from_codepoints(cps) == text
    # two lone surrogates stay two code points: swapped apart, never merged into one emoji
    assert noise.apply("a\ud83d\ude00b", "swap:p=1") == "\ud83dab\ude00"


def test_api_rejects_non_str():
    with pytest.raises(TypeError):
        noise.apply(b"bytes", "drop:p=0.1")
    with pytest.raises(TypeError):
        noise.apply_corpus(["ok", 3], "drop:p=0.1")
    with pytest.raises(ValueError):
        noise.apply_corpus(["a", "b"], "drop:p=0.1", indices=[0])


def test_max_unicode_is_covered():
    assert sys.maxunicode + 1 == N_CODEPOINTS
