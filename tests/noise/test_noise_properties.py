"""Property-based tests of every noise: the issue's properties, plus equality with plain per-character
reference loops that consume the documented random draws (so the vectorised code must equal the
sequential definition, not just look plausible)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from robustbench_bytes import noise
from robustbench_bytes.noise import transforms
from robustbench_bytes.noise.codepoints import from_codepoints, to_codepoints
from robustbench_bytes.noise.keyboard import neighbours

# Characters that stress the Unicode handling: expanding case mappings (ß, İ, ŉ, ﬁ, ΐ), Greek sigma,
# titlecase ǅ, caseless scripts, emoji, combining marks, every kind of whitespace and line break.
TRICKY = ("aZß İıŉﬁΐΣσςǅǆǄ日本語한글😀🎉e\u0301\u00a0\u2003\t\r\n\x0b\x0c\x1c\x1f\x85\u2028\u2029"
          "ÅåÆØ ЖжЯя ΑαΩω ÿŸµ Ǳ ﬀ ﬃ ẞ ᾳ ʼ0123456789,.;'!?")
texts = st.one_of(st.text(max_size=120), st.text(alphabet=TRICKY, max_size=120),
                  st.text(alphabet="abcdefghij KLMNOP\n", max_size=120))
ascii_texts = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=150)
probabilities = st.sampled_from([0.0, 0.05, 0.3, 0.5, 0.9, 1.0]) | st.floats(0, 1)
seeds = st.integers(0, 2**40)
PROPS = settings(max_examples=60, deadline=None)

P_NOISES = ["drop", "repeat", "uppercase", "flip_case", "swap", "keyboard", "insert"]
ALL_RANDOM_SPECS = ["drop:p=0.3", "repeat:p=0.3", "uppercase:p=0.3", "random_case", "flip_case:p=0.3",
                    "swap:p=0.3", "keyboard:p=0.3", "insert:p=0.3", "whitespace:p_del=0.3,p_ins=0.3"]
EVERY_SPEC = ALL_RANDOM_SPECS + ["antspeak", "uppercase", "clean", "drop:p=0.2+swap:p=0.2+random_case"]


def rng_for(spec: str, seed: int, doc_index: int = 0) -> np.random.Generator:
    [rng] = noise.streams(noise.canonical(spec), 1, seed, doc_index)
    return rng


def events(rng, n, p):
    """The documented event draws (transforms' module docstring)."""
    if p >= 1:
        return [True] * n
    threshold = math.floor(p * 2**32)
    u = []
    for raw in rng.bit_generator.random_raw((n + 1) // 2):  # 64-bit outputs, low 32 bits first
        u += [int(raw) & 0xFFFFFFFF, int(raw) >> 32]
    return [x < threshold for x in u[:n]]


def is_subsequence(small: str, big: str) -> bool:
    it = iter(big)
    return all(c in it for c in small)


# ---- reference loops, one per noise -------------------------------------------------------------

def ref_drop(text, rng, p):
    return "".join(c for c, e in zip(text, events(rng, len(text), p)) if not e)


def ref_repeat(text, rng, p, max):
    ev = events(rng, len(text), p)
    ks = iter(rng.integers(1, max, endpoint=True, size=sum(ev)))
    return "".join(c * (1 + next(ks)) if e else c for c, e in zip(text, ev))


def ref_uppercase(text, rng, p):
    return "".join(c.upper() if e else c for c, e in zip(text, events(rng, len(text), p)))


def ref_random_case(text, rng):
    bits = np.unpackbits(np.frombuffer(rng.bytes((len(text) + 7) // 8), np.uint8), count=len(text))
    return "".join(c.upper() if b else c.lower() for c, b in zip(text, bits))


def ref_flip_case(text, rng, p):
    return "".join(c.swapcase() if e else c for c, e in zip(text, events(rng, len(text), p)))


def ref_swap(text, rng, p):
    chars = list(text)
    if len(chars) < 2:
        return text
    ev = events(rng, len(chars) - 1, p)
    i = 0
    while i < len(chars) - 1:
        if ev[i]:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
            i += 2
        else:
            i += 1
    return "".join(chars)


def ref_keyboard(text, rng, p):
    table = neighbours()
    ev = events(rng, len(text), p)
    hit = [i for i, (c, e) in enumerate(zip(text, ev)) if e and c in table]
    picks = rng.integers(0, [len(table[text[i]]) for i in hit]) if hit else []
    chars = list(text)
    for i, k in zip(hit, picks):
        chars[i] = table[text[i]][k]
    return "".join(chars)


def ref_insert(text, rng, p):
    ev = events(rng, len(text), p)
    fill = iter(rng.integers(0x20, 0x7F, size=sum(ev), dtype=np.uint8))
    return "".join(c + chr(next(fill)) if e else c for c, e in zip(text, ev))


def ref_whitespace(text, rng, p_del, p_ins):
    dele = events(rng, len(text), p_del) if p_del > 0 else [False] * len(text)
    ins = events(rng, len(text), p_ins) if p_ins > 0 else [False] * len(text)
    out = []
    for c, d, i in zip(text, dele, ins):
        if c == " " and d:
            continue
        out.append(c + (" " if i and not c.isspace() else ""))
    return "".join(out)


def ref_antspeak(text):
    """The contract's per-line definition, with str.splitlines' line breaks."""
    out = []
    for line in text.splitlines(keepends=True):
        body = line.splitlines()[0] if line.splitlines() else ""
        chars = [c for c in body if not c.isspace()]
        out.append((" " + "".join(c.upper() + " " for c in chars) if chars else "") + line[len(body):])
    return "".join(out)


# ---- equality with the references ---------------------------------------------------------------

@PROPS
@given(texts, probabilities, seeds)
def test_p_noises_equal_their_reference_loops(text, p, seed):
    for name, ref in [("drop", ref_drop), ("uppercase", ref_uppercase), ("flip_case", ref_flip_case),
                      ("swap", ref_swap), ("keyboard", ref_keyboard), ("insert", ref_insert)]:
        spec = f"{name}:p={p!r}"
        assert noise.apply(text, spec, seed) == ref(text, rng_for(spec, seed), p), spec


@PROPS
@given(texts, probabilities, st.integers(1, 5), seeds)
def test_repeat_equals_reference(text, p, max_, seed):
    spec = f"repeat:p={p!r},max={max_}"
    assert noise.apply(text, spec, seed) == ref_repeat(text, rng_for(spec, seed), p, max_)


@PROPS
@given(texts, seeds)
def test_random_case_equals_reference(text, seed):
    assert noise.apply(text, "random_case", seed) == ref_random_case(text, rng_for("random_case", seed))


@PROPS
@given(texts | st.text(alphabet=" ab\t\n", max_size=80), probabilities, probabilities, seeds)
def test_whitespace_equals_reference(text, p_del, p_ins, seed):
    spec = f"whitespace:p_del={p_del!r},p_ins={p_ins!r}"
    assert noise.apply(text, spec, seed) == ref_whitespace(text, rng_for(spec, seed), p_del, p_ins)


@PROPS
@given(texts | st.text(alphabet=" \t\r\n\u2028ab", max_size=40))
def test_antspeak_equals_the_per_line_definition(text):
    assert noise.apply(text, "antspeak") == ref_antspeak(text)


def test_antspeak_examples():
    assert noise.apply("an owl", "antspeak") == " A N O W L "
    assert noise.apply("an owl\n", "antspeak") == " A N O W L \n"
    assert noise.apply("an  owl\r\n\r\nstraße\n", "antspeak") == " A N O W L \r\n\r\n S T R A SS E \n"
    assert noise.apply("", "antspeak") == ""


# ---- the properties ---------------------------------------------------------------------

@PROPS
@given(texts, seeds)
def test_p_zero_is_the_identity(text, seed):
    for name in P_NOISES:
        assert noise.apply(text, f"{name}:p=0", seed) == text
    assert noise.apply(text, "whitespace:p_del=0,p_ins=0", seed) == text
    assert noise.apply(text, "clean", seed) == text


@PROPS
@given(texts, probabilities, seeds)
def test_drop_output_is_a_subsequence(text, p, seed):
    out = noise.apply(text, f"drop:p={p!r}", seed)
    assert is_subsequence(out, text)
    if p == 1:
        assert out == ""


@PROPS
@given(texts, probabilities, st.integers(1, 4), seeds)
def test_repeat_input_is_a_subsequence_and_runs_grow_by_at_most_max(text, p, max_, seed):
    out = noise.apply(text, f"repeat:p={p!r},max={max_}", seed)
    assert is_subsequence(text, out)
    assert len(text) <= len(out) <= len(text) * (1 + max_)


@PROPS
@given(ascii_texts, probabilities, seeds)
def test_case_noises_keep_length_and_casefold_of_ascii(text, p, seed):
    for spec in [f"uppercase:p={p!r}", "random_case", f"flip_case:p={p!r}"]:
        out = noise.apply(text, spec, seed)
        assert len(out) == len(text) and out.casefold() == text.casefold(), spec


@PROPS
@given(texts)
def test_full_uppercase_is_str_upper(text):
    assert noise.apply(text, "uppercase") == text.upper()
    assert noise.apply(text, "flip_case:p=1") == "".join(c.swapcase() for c in text)


@PROPS
@given(st.text(alphabet="日本語한글😀0123456789 .,!\n", max_size=80), seeds)
def test_case_noises_leave_caseless_scripts_alone(text, seed):
    for spec in ["uppercase", "uppercase:p=0.5", "random_case", "flip_case:p=0.7"]:
        assert noise.apply(text, spec, seed) == text


@PROPS
@given(texts, probabilities, seeds)
def test_swap_permutes_and_moves_nothing_more_than_one_place(text, p, seed):
    out = noise.apply(text, f"swap:p={p!r}", seed)
    assert sorted(out) == sorted(text)
    for i, c in enumerate(out):
        assert c in text[max(0, i - 1):i + 2]
    changed = [i for i in range(len(text)) if out[i] != text[i]]
    for i in changed:  # every change is one half of an adjacent exchange
        assert (i + 1 < len(text) and out[i] == text[i + 1] and out[i + 1] == text[i]) or \
               (i > 0 and out[i] == text[i - 1] and out[i - 1] == text[i])


@PROPS
@given(texts, probabilities, seeds)
def test_keyboard_replaces_only_keys_by_their_neighbours(text, p, seed):
    table = neighbours()
    out = noise.apply(text, f"keyboard:p={p!r}", seed)
    assert len(out) == len(text)
    for a, b in zip(text, out):
        assert a == b or (a in table and b in table[a])


@PROPS
@given(texts, probabilities, seeds)
def test_insert_adds_printable_ascii_only(text, p, seed):
    out = noise.apply(text, f"insert:p={p!r}", seed)
    assert is_subsequence(text, out) and len(text) <= len(out) <= 2 * len(text)
    extra = list(out)
    for c in text:  # remove the original characters greedily; what is left was inserted
        extra.remove(c)
    assert all(" " <= c <= "~" for c in extra)


@PROPS
@given(texts, probabilities, probabilities, seeds)
def test_whitespace_only_moves_spaces(text, p_del, p_ins, seed):
    out = noise.apply(text, f"whitespace:p_del={p_del!r},p_ins={p_ins!r}", seed)
    assert out.replace(" ", "") == text.replace(" ", "")


@PROPS
@given(texts, seeds)
def test_output_is_always_encodable_utf8(text, seed):
    for spec in EVERY_SPEC:
        noise.apply(text, spec, seed).encode("utf-8")  # raises on a lone surrogate


@settings(max_examples=15, deadline=None)
@given(seeds)
def test_same_seed_same_output_other_seed_other_output(seed):
    text = "The quick brown fox jumps over the lazy dog, said Σίσυφος. " * 40
    for spec in ALL_RANDOM_SPECS:
        first = noise.apply(text, spec, seed)
        assert noise.apply(text, spec, seed) == first
        assert noise.apply(text, spec, seed + 1) != first, spec
        assert noise.apply(text, spec, seed, doc_index=1) != first, spec


@settings(max_examples=25, deadline=None)
@given(st.lists(texts, max_size=8), st.randoms(use_true_random=False), seeds)
def test_document_output_does_not_depend_on_corpus_order_or_sharding(docs, shuffler, seed):
    for spec in ["drop:p=0.3", "repeat:p=0.3+random_case", "swap:p=0.5"]:
        whole = noise.apply_corpus(docs, spec, seed)
        alone = [noise.apply(d, spec, seed, doc_index=i) for i, d in enumerate(docs)]
        assert whole == alone
        order = list(range(len(docs)))
        shuffler.shuffle(order)
        shuffled = noise.apply_corpus([docs[i] for i in order], spec, seed, indices=order)
        assert shuffled == [whole[i] for i in order]


def test_different_specs_get_different_streams():
    text = "abcdefghij" * 50
    assert noise.apply(text, "drop:p=0.3") != noise.apply(text, "drop:p=0.30001")


@PROPS
@given(texts, seeds)
def test_composition_applies_each_part_with_its_own_child_stream(text, seed):
    spec = "drop:p=0.3+uppercase:p=0.5"
    rng_a, rng_b = noise.streams(noise.canonical(spec), 2, seed, 0)
    expected = ref_uppercase(ref_drop(text, rng_a, 0.3), rng_b, 0.5)
    assert noise.apply(text, spec, seed) == expected


bmp_texts = st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=120) | \
    st.text(alphabet=TRICKY.replace("😀", "").replace("🎉", ""), max_size=120)


@PROPS
@given(ascii_texts | bmp_texts | texts, seeds)
def test_narrow_representations_equal_the_uint32_path(text, seed):
    natural = to_codepoints(text)
    if text.isascii():
        assert natural.dtype == np.uint8
    elif all(ord(c) < 0x10000 for c in text):
        assert natural.dtype == np.uint16
    else:
        assert natural.dtype == np.uint32
    wide = natural.astype(np.uint32) if natural.dtype != np.uint32 else natural
    for spec in EVERY_SPEC:
        for part in noise.parse(spec):
            params = dict(part.params)
            a = part.noise.transform(natural, np.random.default_rng(seed), **params)
            b = part.noise.transform(wide, np.random.default_rng(seed), **params)
            assert a.dtype == natural.dtype and b.dtype == np.uint32
            assert from_codepoints(a) == from_codepoints(b), spec


def test_transforms_never_write_into_their_input():
    cps = to_codepoints("Hello wide world, straße! " * 20)
    frozen = cps.copy()
    for spec in EVERY_SPEC:
        for part in noise.parse(spec):
            part.noise.transform(cps, np.random.default_rng(0), **dict(part.params))
    assert (cps == frozen).all()


def test_swap_positions_rule():
    assert list(transforms.swap_positions(np.array([1, 1, 1, 0, 1, 1, 0, 0, 1], bool))) == [0, 2, 4, 8]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=300), st.integers(1, 17))
def test_blocked_repeat_equals_np_repeat(extra, block):
    cps = np.arange(len(extra), dtype=np.uint32)
    extra = np.array(extra, dtype=np.int64)
    selected = np.flatnonzero(extra)
    expected = np.repeat(cps, 1 + extra)
    assert (transforms._repeat_blocked(cps, selected, extra[selected], block=block) == expected).all()
    assert (transforms.insert_after(cps, selected, extra[selected], np.repeat(cps[selected], extra[selected]))
            == expected).all()


def test_long_text_crosses_repeat_blocks():
    text = ("abcdefghijklmnopqrstuvwxyz " * 12000)[:300_001]
    assert noise.apply(text, "repeat:p=0.3", 7) == ref_repeat(text, rng_for("repeat:p=0.3", 7), 0.3, 3)
