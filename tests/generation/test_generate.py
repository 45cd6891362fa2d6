"""Generation: plain decoding against the full-sequence forward, speculative decoding against plain decoding
(greedy, beta 1: byte for byte), the decoders' cached/stepped logits against forward(), and the drafter's
byte bookkeeping. Tiny random models (built here) and, where complete, every byte x subword pair of the zoo."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from support.tiny_decoders import (TEXT, loaded, spacey_byte_mamba, tiny_bpe, tiny_byte_gpt, tiny_byte_mamba,
                                   tiny_subword_gpt, tiny_subword_mamba)

from robustbench_bytes.errors import BadInput
from robustbench_bytes.generation import Generation, check_options, generate
from robustbench_bytes.generation.decoders import make_decoder
from robustbench_bytes.generation.drafter import Drafter, split_point
from robustbench_bytes.generation.sampling import choose, rank, ranks
from robustbench_bytes.generation.speculative import POLICIES, DraftStats, speculative
from robustbench_bytes.models.mamba import MambaLM
from robustbench_bytes.models.tokenization import SubwordTokenizer

TIE = 1e-3  # a top-2 logit margin this small is a float tie: chunked and stepped rounding may order it either way

WORDS = ["In the beginning", "And God said, Let there", "the earth was with", "Shall I compare thee",
         "caf", "Über", "日本", "emoji 🙂", "darkness was upon the face", "", " ", "\n", "a", "Thou art more lov",
         "ﬁ", "naïve déj", "and void;", "the deep.", "summer's", "temperate.\n"]
PROMPTS = WORDS + [f"{a} {b}" for a, b in zip(WORDS[:15], reversed(WORDS[5:]))] + \
    [TEXT[i:i + 23] for i in range(0, 300, 20)]
assert len(PROMPTS) >= 50


def zoo_pairs():
    """(byte, subword) names of the zoo whose directories are complete (config.json and weights)."""
    from robustbench_bytes.models import ZOO_DIR, zoo_names

    levels = {}
    for name in zoo_names():
        d = ZOO_DIR / name
        if not any((d / w).is_file() for w in ("model.safetensors", "pytorch_model.bin")):
            continue
        config = json.loads((d / "config.json").read_text())
        meta = config.get("robustbench") or {}
        level = meta.get("level") or ("byte" if config.get("vocab_size") == 256 and not (d / "tokenizer.json").exists()
                                      else "subword")
        levels[name] = level
    return [(b, s) for b in levels if levels[b] == "byte" for s in levels if levels[s] == "subword"]


_LOADED = {}


def load(name):
    from robustbench_bytes.models import load_model

    if name not in _LOADED:
        _LOADED[name] = load_model(name, "cpu")
    return _LOADED[name]


def greedy_logits_chain(model, prompt, data):
    """The full-sequence forward over prefix + prompt + data: the logits row that predicts each byte of data."""
    ids = list(model.tokenizer.prefix_ids) + model.tokenizer.encode(prompt)
    full = torch.tensor([ids + list(data)])
    with torch.inference_mode():
        logits, _ = model.module(full) if isinstance(model.module, MambaLM) else (model.module(full), None)
    return logits[0, len(ids) - 1:len(ids) - 1 + len(data), :256]


def margin(row):
    top = torch.topk(row, 2).values
    return float(top[0] - top[1])


def same_greedy(plain: bytes, spec: bytes, model, prompt) -> bool:
    """Asserts byte-for-byte equality, except at a float tie of the verifier: then returns False (the caller
    counts ties; a real difference is never excused)."""
    if plain == spec:
        return True
    p = next((i for i, (a, b) in enumerate(zip(plain, spec)) if a != b), min(len(plain), len(spec)))
    row = greedy_logits_chain(model, prompt, plain[:p + 1])[p]
    assert margin(row) < TIE, (f"{model.name} prompt {prompt!r}: speculative differs from plain at byte {p} "
                               f"(plain {plain[:p + 1]!r}, speculative {spec[:p + 1]!r}), top-2 margin {margin(row):.3g}")
    print(f"float tie at byte {p} of {prompt!r} (margin {margin(row):.2g})")
    return False


def assert_few_ties(ties: list, total: int):
    assert len(ties) <= max(1, total // 50), f"{len(ties)} of {total} prompts diverged at float ties: {ties}"


# ---- sampling -------------------------------------------------------------------------------------------------

def test_rank_zero_is_the_greedy_choice_with_ties_to_the_lowest_index():
    row = torch.tensor([0.5, 2.0, 2.0, -1.0, 2.0])
    assert choose(row) == 1
    assert [rank(row, t) for t in range(5)] == [3, 0, 1, 4, 2]
    rows = torch.stack([row, row.flip(0)])
    assert ranks(rows, [2, 0]) == [rank(row, 2), rank(row.flip(0), 0)]


def test_sampling_is_reproducible_from_the_seed_and_top_k_keeps_the_k_largest():
    row = torch.randn(50, generator=torch.Generator().manual_seed(0))
    draws = [choose(row, 1.0, None, torch.Generator().manual_seed(s)) for s in range(2) for _ in range(1)]
    again = [choose(row, 1.0, None, torch.Generator().manual_seed(s)) for s in range(2)]
    assert draws == again
    g = torch.Generator().manual_seed(3)
    top3 = set(torch.topk(row, 3).indices.tolist())
    assert {choose(row, 5.0, 3, g) for _ in range(200)} <= top3


# ---- decoders -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("build", [tiny_byte_mamba, tiny_byte_gpt, tiny_subword_mamba,
                                   lambda: tiny_subword_gpt(block_size=64)])
def test_prefill_feed_and_step_give_the_full_forward_logits(build):
    model = build()
    ids = (list(range(3, 40)) * 2)[:60]
    if model.level == "subword":
        ids = [i % model.tokenizer.vocab_size for i in ids]
    with torch.inference_mode():
        ref = model.module(torch.tensor([ids]))
        ref = (ref[0] if isinstance(ref, tuple) else ref)[0, :, :model.tokenizer.vocab_size]
        dec = make_decoder(model)
        rows = [dec.prefill(ids[:10])[None], dec.feed(ids[10:17])]
        rows += [dec.step(t)[None] for t in ids[17:30]]
        saved = dec.save()
        after = dec.feed(ids[30:45])
        dec.restore(saved)
        again = dec.feed(ids[30:45])
        rows += [again, torch.stack([dec.step(t) for t in ids[45:]])]
    got = torch.cat(rows)
    want = ref[9:]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert torch.equal(after, again)  # a restored context computes exactly what it computed before


def test_gpt_decoder_restarts_its_window_past_block_size():
    model = tiny_byte_gpt(block_size=16)
    out = generate(model, "abc", max_bytes=60)
    assert out.bytes == 60
    dec = make_decoder(model)
    dec.prefill(list(range(1, 15)))
    saved = dec.save()
    for t in range(20):
        dec.step(t + 40)  # past the window: the cache restarts from the last 8 tokens
    dec.restore(saved)  # the cache was rebuilt meanwhile: the context is rebuilt from the last 8 saved tokens
    with torch.inference_mode():
        want = model.module(torch.tensor([list(range(1, 15))[-8:] + [7]]))[0, -1]
    torch.testing.assert_close(dec.step(7), want, rtol=1e-4, atol=1e-4)


# ---- plain decoding -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("build", [tiny_byte_mamba, tiny_byte_gpt])
def test_plain_greedy_is_the_argmax_chain_of_the_full_forward(build):
    model = build()
    for prompt in PROMPTS[:12]:
        data = generate(model, prompt, max_bytes=40).data
        assert len(data) == 40
        rows = greedy_logits_chain(model, prompt, data)
        for i, b in enumerate(data):
            assert b == int(rows[i].argmax()) or margin(rows[i]) < TIE, (prompt, i)


def test_plain_greedy_on_the_zoo_is_the_argmax_chain_of_the_full_forward():
    names = sorted({b for b, _ in zoo_pairs()})
    if not names:
        names = [None]
    for name in names:
        model = load(name) if name else tiny_byte_mamba(seed=5, d_model=48, n_layer=3)
        for prompt in PROMPTS[:5]:
            data = generate(model, prompt, max_bytes=64).data
            rows = greedy_logits_chain(model, prompt, data)
            assert all(b == int(rows[i].argmax()) or margin(rows[i]) < TIE for i, b in enumerate(data))


def test_subword_plain_decoding_stops_at_end_of_text_and_cuts_the_last_token_to_max_bytes():
    model = tiny_subword_mamba()
    eos = model.tokenizer.eos_token_id

    class EosFirst(MambaLM):
        def forward(self, ids, state=None):
            logits, state = super().forward(ids, state)
            logits[..., eos] += 1e4
            return logits, state

    module = EosFirst(model.module.config)
    module.load_state_dict(model.module.state_dict())
    stopped = generate(loaded(module.eval(), model.tokenizer, "subword", "mamba", "eos"), "In the", max_bytes=50)
    assert stopped.data == b"" and stopped.text == ""
    for n in (1, 7, 33):
        assert generate(model, "In the", max_bytes=n).bytes <= n
    long = generate(model, "In the", max_bytes=33)
    table = model.tokenizer.token_bytes
    assert long.data == b"".join(table[t] for t in _plain_tokens(model, "In the", 40))[: long.bytes]


def _plain_tokens(model, prompt, n):
    dec = make_decoder(model)
    with torch.inference_mode():
        logits = dec.prefill(list(model.tokenizer.prefix_ids) + model.tokenizer.encode(prompt))
        out = []
        for _ in range(n):
            out.append(choose(logits))
            logits = dec.step(out[-1])
    return out


def test_sampling_is_reproducible_given_the_seed_plain_and_speculative():
    v, d = tiny_byte_mamba(), tiny_subword_mamba()
    for kwargs in ({}, {"draft": d}, {"draft": d, "beta": 3.0, "draft_tokens": 5}):
        a = generate(v, "In the", max_bytes=50, temperature=0.9, top_k=20, seed=4, **kwargs)
        b = generate(v, "In the", max_bytes=50, temperature=0.9, top_k=20, seed=4, **kwargs)
        c = generate(v, "In the", max_bytes=50, temperature=0.9, top_k=20, seed=5, **kwargs)
        assert a.data == b.data and a.bytes == 50
        assert a.data != c.data


# ---- speculative == plain (greedy, beta 1) ---------------------------------------------------------------------

def _pairs():
    pairs = [(tiny_byte_mamba(0), tiny_subword_mamba()), (spacey_byte_mamba(3), tiny_subword_gpt()),
             (spacey_byte_mamba(5), tiny_subword_mamba(seed=6)), (tiny_byte_gpt(), tiny_subword_mamba(seed=4))]
    return pairs


@pytest.mark.parametrize("policy", POLICIES)
def test_greedy_speculative_equals_greedy_plain_on_tiny_random_models(policy):
    """Every prompt on one verifier/drafter pair, the pairs taking turns (the zoo test runs every prompt on
    every byte model), under each policy after a rejection."""
    ties, total = [], 0
    pairs = list(_pairs())
    for i, prompt in enumerate(PROMPTS):
        verifier, drafter = pairs[i % len(pairs)]
        n = 24 + (i * 7) % 29  # max-bytes lands anywhere in a draft
        plain = generate(verifier, prompt, max_bytes=n)
        spec = generate(verifier, prompt, max_bytes=n, draft=drafter, draft_tokens=1 + i % 5, policy=policy)
        assert spec.bytes == plain.bytes == n
        total += 1
        if not same_greedy(plain.data, spec.data, verifier, prompt):
            ties.append((verifier.name, prompt))
    assert total >= 50
    assert_few_ties(ties, total)


@pytest.mark.parametrize("policy", POLICIES)
def test_greedy_speculative_equals_greedy_plain_on_the_zoo(policy):
    """Every complete zoo byte model verifies all the prompts; its drafters (every complete subword model) take
    turns prompt by prompt, so every pair is exercised; under each policy after a rejection."""
    pairs = zoo_pairs()
    if pairs:
        verifiers = [(load(b), [load(s) for bb, s in pairs if bb == b]) for b in sorted({b for b, _ in pairs})]
    else:
        warnings.warn("no complete byte + subword pair in the zoo: tiny random models stand in")
        verifiers = [(tiny_byte_mamba(seed=7, d_model=48, n_layer=3), [tiny_subword_mamba(seed=8), tiny_subword_gpt()])]
    accepted, ties, total = 0, [], 0
    for verifier, drafters in verifiers:
        for i, prompt in enumerate(PROMPTS):
            plain = generate(verifier, prompt, max_bytes=40)
            spec = generate(verifier, prompt, max_bytes=40, draft=drafters[i % len(drafters)],
                            draft_tokens=(1, 3, 5)[i % 3], policy=policy)
            accepted += spec.draft.accepted_bytes
            total += 1
            if not same_greedy(plain.data, spec.data, verifier, prompt):
                ties.append((verifier.name, prompt))
    assert_few_ties(ties, total)
    assert accepted > 0 or not pairs  # trained pairs agree on some bytes


class ScriptedDrafter:
    """Stands in for Drafter: proposes given byte strings, one per round (then the verifier's own bytes)."""

    def __init__(self, proposals):
        self.proposals, self.calls, self.resyncs = list(proposals), 0, 0

    def start(self, context):
        pass

    def propose(self, n_tokens):
        self.calls += 1
        proposal = self.proposals.pop(0) if self.proposals else b""
        self.draft_ends = [len(proposal)] if proposal else []  # one "token": the whole proposal
        return proposal, False

    def accept_all(self):
        pass

    def resync(self, committed):
        self.resyncs += 1


def _spec(verifier, prompt, max_bytes, drafter, **kw):
    stats, pieces = DraftStats(), []
    context = list(verifier.tokenizer.prefix_ids) + verifier.tokenizer.encode(prompt)
    with torch.inference_mode():
        out = speculative(make_decoder(verifier), drafter, context, prompt.encode(), max_bytes, pieces.append,
                          stats=stats, **kw)
    assert b"".join(pieces) == bytes(out)  # every committed byte was emitted, once, in order
    return bytes(out), stats


def test_a_draft_accepted_whole_and_cut_by_max_bytes_mid_draft():
    v = tiny_byte_mamba()
    plain = generate(v, "In the", max_bytes=64).data
    cuts = [0, 5, 6, 19, 20, 33, 50, 64]  # the verifier's own greedy bytes, drafted in slices (one ends mid-draft)
    drafter = ScriptedDrafter([plain[a:b] for a, b in zip(cuts, cuts[1:])] + [plain[50:] + b"xyz"])
    out, stats = _spec(v, "In the", 61, drafter)
    assert out == plain[:61]
    assert stats.accepted_bytes == stats.drafted_bytes == 61
    assert stats.whole_drafts == stats.drafts - 1  # the last draft was cut by max_bytes, not rejected
    assert stats.agreed_tokens == stats.drafted_tokens == stats.drafts - 1  # the cut draft's token is not counted
    assert drafter.resyncs == 0


def test_a_draft_rejected_at_its_first_byte():
    v = spacey_byte_mamba()
    plain = generate(v, "In the", max_bytes=40).data
    wrong = bytes([(plain[0] + 1) % 256]) + plain[1:10]
    drafter = ScriptedDrafter([wrong] * 40)
    out, stats = _spec(v, "In the", 40, drafter)
    assert out == plain
    assert stats.accepted_bytes == 0 and stats.drafts >= 1 and drafter.resyncs >= 1


class WrongDrafter(ScriptedDrafter):
    """Proposes, every round, a byte other than the verifier's next greedy byte (`plain`): each draft is rejected
    at its first byte."""

    def __init__(self, plain: bytes):
        super().__init__([])
        self.plain, self.prompt_length, self.position = plain, 0, 0

    def start(self, context):
        self.prompt_length = len(context)

    def propose(self, n_tokens):
        self.calls += 1
        self.draft_ends = [4]
        return bytes([(self.plain[self.position] + 1) % 256]) + b"xyz", False

    def resync(self, committed):
        self.resyncs += 1
        self.position = len(committed) - self.prompt_length


@pytest.mark.parametrize("policy", POLICIES)
def test_after_a_rejection_redraft_drafts_again_at_once_and_word_corrects_to_the_end_of_the_word(policy):
    v = spacey_byte_mamba()
    plain = generate(v, "In the", max_bytes=40).data
    out, stats = _spec(v, "In the", 40, WrongDrafter(plain), policy=policy)
    assert out == plain and stats.accepted_bytes == 0 and stats.agreed_tokens == 0 < stats.drafted_tokens
    if policy == "redraft":  # one byte of the verifier's own per draft
        assert stats.drafts == 40
    else:  # a draft at the start and after every space or newline
        starts = [i for i in range(40) if i == 0 or plain[i - 1] in (0x20, 0x0A)]
        assert 1 < len(starts) < 40 and stats.drafts == len(starts)


def test_utf8_characters_split_across_drafts_and_empty_drafts():
    v = tiny_byte_mamba(seed=2)
    plain = generate(v, "café ", max_bytes=48).data
    cuts = list(range(0, 49, 3))
    drafter = ScriptedDrafter([plain[a:b] for a, b in zip(cuts, cuts[1:])])
    out, _ = _spec(v, "café ", 48, drafter)
    assert out == plain
    out, stats = _spec(v, "café ", 48, ScriptedDrafter([]))  # no proposals at all: the verifier decodes alone
    assert out == plain and stats.accepted_bytes == 0
    text = "naïve 日本 🙂".encode()
    assert Generation(text[:-1], 1.0).text == "naïve 日本 "  # a character cut by max-bytes is left out
    assert Generation(text, 1.0).text == "naïve 日本 🙂"


def test_empty_continuations():
    v, d = tiny_byte_mamba(), tiny_subword_mamba()
    for kwargs in ({}, {"draft": d}):
        g = generate(v, "In the", max_bytes=0, **kwargs)
        assert g.data == b"" and g.text == "" and g.bytes == 0
    g = generate(v, "", max_bytes=10, draft=d)
    assert g.data == generate(v, "", max_bytes=10).data


# ---- the drafter ----------------------------------------------------------------------------------------------

def test_split_point_holds_back_the_last_word_with_its_space():
    for data, pending in [(b"In the beginn", b" beginn"), (b"line\n", b""), (b"a b ", b" "), (b"word", b"word"),
                          (b"", b""), ("x caf\xc3".encode("latin-1"), b" caf\xc3")]:
        assert data[split_point(data):] == pending


def test_token_bytes_spell_the_text_including_characters_split_across_tokens():
    tok = tiny_bpe()
    table = tok.token_bytes
    for text in [TEXT, "日本語のテキスト🙂", "ﬁne café", "  spaces\n\n"]:
        assert b"".join(table[i] for i in tok.encode(text)) == text.encode("utf-8")
    assert table[tok.eos_token_id] == b""
    assert any(len(b) == 1 and b[0] >= 0x80 for b in table)  # some tokens are part of a character


def test_drafter_proposes_what_its_tokens_spell_after_the_pending_word():
    d = tiny_subword_mamba()
    drafter = Drafter(d)
    with torch.inference_mode():
        drafter.start(b"In the beginn")
        assert drafter.pending == b" beginn"
        for n in (1, 4, 12):
            proposed, ended = drafter.propose(n)
            spelled = b"".join(drafter.table[t] for t in drafter.draft)
            assert spelled.startswith(b" beginn") or b" beginn".startswith(spelled)  # tokens heal the word
            assert proposed == spelled[len(b" beginn"):]
            drafter.resync(b"In the beginn")  # nothing committed: back to the context before the draft
        drafter.resync(b"In the beginning God ")
        assert drafter.pending == b" "
        assert drafter.fed == len(b"In the beginning God")


def test_bad_options_are_refused_with_the_parameter_named():
    for kwargs, name in [({"max_bytes": -1}, "max_bytes"), ({"temperature": -0.5}, "temperature"),
                         ({"top_k": 0}, "top_k"), ({"beta": 0.5}, "beta"), ({"draft_tokens": 0}, "draft_tokens"),
                         ({"policy": "eager"}, "policy")]:
        with pytest.raises(BadInput, match=name):
            check_options(**kwargs)
    v, d = tiny_byte_mamba(), tiny_subword_mamba()
    with pytest.raises(BadInput, match="byte-level"):
        generate(d, "x", draft=d)
    with pytest.raises(BadInput, match="subword"):
        generate(v, "x", draft=v)


def test_drafter_feeds_pending_bytes_no_token_can_spell():
    drafter = Drafter(tiny_subword_mamba())
    drafter.by_first, drafter.masks = {}, {}  # as if no token of the vocabulary could spell the pending word
    with torch.inference_mode():
        drafter.start(b"In the beginn")
        proposed, ended = drafter.propose(3)
    assert proposed == b"".join(drafter.table[t] for t in drafter.draft)  # all new: the pending bytes were fed


def test_token_bytes_of_a_tokenizer_that_is_not_byte_level():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"<unk>": 0, "hello": 1, "wörld": 2, "<|endoftext|>": 3}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<|endoftext|>"])
    table = SubwordTokenizer(tok, eos_token_id=3).token_bytes
    assert table[1] == b"hello" and table[2] == "wörld".encode() and table[3] == b""


def test_hugging_face_models_generate_and_draft(tmp_path):
    transformers = pytest.importorskip("transformers")
    from robustbench_bytes.models import load_model

    tok = tiny_bpe()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok.tokenizer, bos_token="<|endoftext|>",
                                                eos_token="<|endoftext|>")
    fast.save_pretrained(tmp_path)
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=tok.vocab_size, n_positions=16, n_embd=32, n_layer=2, n_head=2,
                                     bos_token_id=0, eos_token_id=0)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    hf = load_model(f"hf:{tmp_path}", "cpu")
    alone = generate(hf, "In the beginning", max_bytes=60)  # past its 16 positions: the cache restarts
    assert 0 < alone.bytes <= 60
    v = spacey_byte_mamba(seed=9)
    for k in (1, 3):
        spec = generate(v, "In the beginning", max_bytes=40, draft=hf, draft_tokens=k)
        assert spec.data == generate(v, "In the beginning", max_bytes=40).data
