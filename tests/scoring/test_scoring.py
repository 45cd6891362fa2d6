"""scoring.py: window plans (lm-evaluation-harness semantics), exactness of windows and chunks against direct
forward passes, batching/padding invariance, metric identities, non-finite scores."""

import math
import random

import pytest
import torch
import torch.nn.functional as F

from robustbench_bytes import scoring
from robustbench_bytes.data import Corpus
from robustbench_bytes.errors import BadInput
from robustbench_bytes.models.transformer import GPT, GPTConfig
from support.run_fakes import in_memory_model


class Bytes:
    """A stand-in byte tokenizer (prefix: a newline byte)."""

    prefix_ids = [10]
    vocab_size = 256

    def encode(self, text):
        return list(text.encode("utf-8"))

    def describe_prefix(self):
        return "byte 0x0a"


def gpt_model(block_size=32, seed=0):
    torch.manual_seed(seed)
    module = GPT(GPTConfig(vocab_size=256, block_size=block_size, n_layer=2, n_head=2, d_model=32)).eval()
    return in_memory_model(module, Bytes(), "gpt", "byte")


def last_token_nll(module, context, target):
    """NLL of `target` after `context` (a list of ids), from one direct forward pass."""
    with torch.no_grad():
        logits = module(torch.tensor([context]))[0, -1]
    return -F.log_softmax(logits.double(), dim=-1)[target].item()


DOCS = ["In the beginning God created the heaven and the earth.",
        "And the earth was without form, and void; and darkness was upon the face of the deep. " * 2,
        "",
        "Let there be light: and there was light. \u00e9\u4e16\u754c"]


# --- window plans ---

def test_windows_match_lm_evaluation_harness_disjoint_windows():
    # lm-evaluation-harness's documented case: 34 tokens, max_seq_len 10, context_len 1, prefix token -100
    tokens = list(range(34))
    seq = [-100] + tokens
    got = [(seq[w.start:w.end], seq[w.end - w.scored + 1:w.end + 1])
           for w in scoring.plan_windows(34, 10, prefix_len=1)]
    assert got == [
        ([-100, 0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        ([9, 10, 11, 12, 13, 14, 15, 16, 17, 18], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]),
        ([19, 20, 21, 22, 23, 24, 25, 26, 27, 28], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]),
        ([23, 24, 25, 26, 27, 28, 29, 30, 31, 32], [30, 31, 32, 33]),
    ]


@pytest.mark.parametrize("n,max_length,context,stride", [
    (0, 5, None, None), (1, 5, None, None), (5, 5, None, None), (6, 5, None, None), (57, 8, 3, None),
    (57, 8, None, 2), (40, 8, 8, 1), (40, 9, 4, 6), (100, 16, 1, 16)])
def test_every_target_scored_once_with_at_least_context(n, max_length, context, stride):
    plan = scoring.plan_windows(n, max_length, 1, context, stride)
    ctx, _ = scoring.window_options(max_length, context, stride)
    scored = []
    for i, w in enumerate(plan):
        assert 0 <= w.start < w.end and w.end - w.start <= max_length and 1 <= w.scored <= w.end - w.start
        first_target = w.end - w.scored + 1
        scored.extend(range(first_target, w.end + 1))
        assert first_target - w.start >= (1 if i == 0 else min(ctx, first_target))
    assert scored == list(range(1, n + 1))


def test_bad_window_options_are_bad_input():
    with pytest.raises(BadInput, match="context=5 with stride=5"):
        scoring.window_options(8, 5, 5)
    with pytest.raises(BadInput, match="stride=0"):
        scoring.window_options(8, None, 0)
    with pytest.raises(BadInput, match="context=0"):
        scoring.window_options(8, 0, None)


# --- windowed scoring is exact ---

def test_one_window_equals_a_direct_forward_when_the_document_fits():
    model = gpt_model(block_size=128)
    text = DOCS[0]
    cell = scoring.score_corpus(model, Corpus("c", [text]), progress=False)
    ids = [10] + list(text.encode())
    with torch.no_grad():
        logp = F.log_softmax(model.module(torch.tensor([ids[:-1]]))[0].double(), dim=-1)
    expected = -logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum().item()
    assert cell.result.nll == pytest.approx(expected, rel=1e-5)
    assert cell.result.tokens == len(text.encode())


def test_disjoint_windows_condition_as_lm_evaluation_harness():
    # max_length 16 over 54 bytes: targets 0..15 see the prefix + all earlier bytes; targets 16..31 see
    # bytes 15..; 32..47 see 31..; the last short window (48..53) sees the 16 tokens before its last target.
    model = gpt_model(block_size=16)
    text = DOCS[0]
    seq = [10] + list(text.encode())
    n = len(seq) - 1
    expected = 0.0
    for j in range(1, n + 1):  # target seq[j]
        k = (j - 1) // 16
        if j - 1 >= 16 * (n // 16):  # the final partial window: a full 16-token input ending before seq[n]
            start = n - 16
        else:
            start = 0 if k == 0 else 16 * k
        expected += last_token_nll(model.module, seq[start:j], seq[j])
    cell = scoring.score_corpus(model, Corpus("c", [text]), progress=False)
    assert cell.result.nll == pytest.approx(expected, rel=1e-5)


def test_sliding_windows_give_each_token_the_longest_context():
    model = gpt_model(block_size=32)
    text = DOCS[0]
    seq = [10] + list(text.encode())
    expected = sum(last_token_nll(model.module, seq[max(0, j - 12):j], seq[j]) for j in range(1, len(seq)))
    cell = scoring.score_corpus(model, Corpus("c", [text]), progress=False, max_length=12, context=12, stride=1)
    assert cell.result.nll == pytest.approx(expected, rel=1e-5)
    assert cell.result.scoring == {"method": "rolling_windows", "max_length": 12, "context": 12, "stride": 1}


def test_batching_and_padding_do_not_change_per_document_scores():
    model = gpt_model(block_size=24)
    corpus = Corpus("c", DOCS)
    one = scoring.score_corpus(model, corpus, batch_size=1, progress=False)
    many = scoring.score_corpus(model, corpus, batch_size=7, progress=False)
    for a, b in zip(one.documents, many.documents):
        assert a.nll == pytest.approx(b.nll, rel=1e-5, abs=1e-6)
    assert one.documents[2].nll == 0 and one.documents[2].tokens == 0


# --- metrics ---

def test_metric_identities():
    model = gpt_model(block_size=32)
    corpus = Corpus("c", DOCS, doc_ids=["a", "b", "c", "d"])
    cell = scoring.score_corpus(model, corpus, progress=False)
    r = cell.result
    assert r.documents == 4 and [d.id for d in cell.documents] == ["a", "b", "c", "d"]
    assert r.nll == pytest.approx(math.fsum(d.nll for d in cell.documents))
    assert r.bytes == r.clean_bytes == sum(len(d.encode()) for d in DOCS)
    assert r.clean_words == sum(len(d.split()) for d in DOCS)
    assert r.tokens == r.bytes  # byte-level: one token per byte
    assert r.bits_per_byte == pytest.approx(r.nll / (r.bytes * math.log(2)))
    assert r.bits_per_clean_byte == pytest.approx(r.nll / (r.clean_bytes * math.log(2)))
    assert r.word_perplexity == pytest.approx(math.exp(r.nll / r.clean_words))
    assert r.byte_perplexity == pytest.approx(math.exp(r.nll / r.bytes))
    assert r.byte_perplexity == pytest.approx(2 ** r.bits_per_byte)
    assert r.bytes_per_second == pytest.approx(r.bytes / r.seconds)
    assert r.prefix == "byte 0x0a" and r.scoring_version == scoring.SCORING_VERSION
    assert r.corpus_sha256 == corpus.sha256 and r.dtype == "float32"


def test_metrics_with_zero_denominators_are_none():
    from robustbench_bytes.results.schema import derived_metrics

    values, undefined = derived_metrics(0.0, 0, 0, 0)
    assert values == {"bits_per_byte": None, "bits_per_clean_byte": None, "word_perplexity": None,
                      "byte_perplexity": None}
    assert set(undefined) == set(values) and all("divide" in why for why in undefined.values())


def test_a_nan_score_raises_naming_the_document():
    model = gpt_model(block_size=32)
    model.window = lambda ids, mask: torch.full((*ids.shape, 256), float("nan"))
    with pytest.raises(scoring.NonFiniteScore, match=r"document 0 \(x\)"):
        scoring.score_corpus(model, Corpus("c", ["abc"], doc_ids=["x"]), progress=False)


# --- streamed (Mamba) scoring ---

def mamba_model(seed=0):
    from robustbench_bytes.models.mamba import MambaLM

    torch.manual_seed(seed)
    module = MambaLM({"d_model": 24, "n_layer": 2, "vocab_size": 256, "ssm_cfg": {"d_state": 4},
                      "rms_norm": False, "tie_embeddings": False}).eval()
    module.scan_backend = "reference"
    return in_memory_model(module, Bytes(), "mamba", "byte")


def test_mamba_one_piece_equals_chunks_and_batches():
    model = mamba_model()
    corpus = Corpus("c", DOCS)
    whole = []
    for text in DOCS:
        seq = [10] + list(text.encode())
        if len(seq) == 1:
            whole.append(0.0)
            continue
        with torch.no_grad():
            logits, _ = model.module(torch.tensor([seq[:-1]]))
        logp = F.log_softmax(logits[0].double(), dim=-1)
        whole.append(-logp[torch.arange(len(seq) - 1), torch.tensor(seq[1:])].sum().item())
    for batch_size, chunk_size in [(1, 4096), (1, 7), (3, 13), (8, 1000)]:
        cell = scoring.score_corpus(model, corpus, batch_size=batch_size, chunk_size=chunk_size, progress=False)
        assert [d.nll for d in cell.documents] == pytest.approx(whole, rel=1e-4, abs=1e-5)
        assert cell.result.scoring == {"method": "streamed", "chunk_size": chunk_size}


def test_random_order_of_lengths_is_scored_per_document():
    model = mamba_model(seed=1)
    rng = random.Random(0)
    docs = ["".join(rng.choice("ab c\n") for _ in range(rng.randrange(1, 60))) for _ in range(7)]
    cell = scoring.score_corpus(model, Corpus("c", docs), batch_size=3, chunk_size=16, progress=False)
    singles = [scoring.score_corpus(model, Corpus("c", [d]), progress=False).result.nll for d in docs]
    assert [d.nll for d in cell.documents] == pytest.approx(singles, rel=1e-4, abs=1e-5)


def test_a_small_logits_budget_shrinks_chunks_and_batches_but_not_scores(monkeypatch):
    assert scoring.effective_chunk_size(4096, 8, 256) == 4096
    assert 64 <= scoring.effective_chunk_size(4096, 8, 50280) < 4096
    mamba, gpt = mamba_model(), gpt_model(block_size=16)
    corpus = Corpus("c", DOCS)
    before = [scoring.score_corpus(m, corpus, progress=False) for m in (mamba, gpt)]
    mamba.vocab_size = gpt.vocab_size = 256
    monkeypatch.setattr(scoring.loop, "LOGITS_BUDGET", 256 * 16)  # one 16-token window, 64-token chunks
    after = [scoring.score_corpus(m, corpus, progress=False) for m in (mamba, gpt)]
    for a, b in zip(before, after):
        assert [d.nll for d in a.documents] == pytest.approx([d.nll for d in b.documents], rel=1e-5)
