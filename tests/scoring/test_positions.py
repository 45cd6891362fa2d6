"""Bits by position (results/positions.py and its use in scoring): buckets against a sequential reference, sums equal to
the cell's and documents' totals, short documents, tokens that straddle an edge, chunking, old files."""

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustbench_bytes import scoring

from robustbench_bytes.models import lengths
from robustbench_bytes.results import positions
from robustbench_bytes.data import Corpus
from robustbench_bytes.errors import BadInput
from robustbench_bytes.models.transformer import GPT, GPTConfig
from robustbench_bytes.results.schema import CellResult, DocumentRecord, derived_metrics
from robustbench_bytes.results.consistency import check_consistent
from robustbench_bytes.models.tokenization import ByteTokenizer, SubwordTokenizer
from support.run_fakes import in_memory_model


def reference_bucket(offset: int) -> int:
    """The bucket of a byte offset, by walking the edges 0, 64, 128, 256, ..."""
    bucket, upper = 0, 64
    while offset >= upper:
        bucket, upper = bucket + 1, upper * 2
    return bucket


def reference_positions(token_nll, byte_lengths):
    """Sequential reference: walk the tokens, put each token's NLL and bytes at its last byte's bucket."""
    total_bytes = sum(byte_lengths)
    n = 0 if total_bytes == 0 else reference_bucket(total_bytes - 1) + 1
    nll, nbytes, offset = [0.0] * n, [0] * n, 0
    for value, length in zip(token_nll, byte_lengths):
        offset += length
        b = reference_bucket(max(offset - 1, 0))
        nll[b] += value
        nbytes[b] += length
    return nll, nbytes


# --- pure bucketing ---

def test_buckets_match_the_sequential_reference_including_every_edge():
    offsets = list(range(0, 3000)) + [(1 << k) + d for k in range(6, 45) for d in (-1, 0, 1)]
    assert positions.bucket_of(offsets).tolist() == [reference_bucket(o) for o in offsets]
    assert positions.edges(4) == [0, 64, 128, 256, 512]
    assert [positions.buckets_for_length(n) for n in (0, 1, 64, 65, 128, 129)] == [0, 1, 1, 2, 2, 3]


def test_document_positions_match_the_sequential_reference():
    rng = random.Random(0)
    for _ in range(20):
        lengths = [rng.choice([0, 1, 1, 2, 3, 7, 40]) for _ in range(rng.randrange(0, 300))]
        nll = [rng.random() * 5 for _ in lengths]
        got = positions.Positions.of_document(nll, lengths)
        want_nll, want_bytes = reference_positions(nll, lengths)
        assert got.bytes.tolist() == want_bytes
        assert got.nll.tolist() == pytest.approx(want_nll, rel=1e-12, abs=1e-12)


def test_a_document_shorter_than_the_first_edge_has_one_bucket():
    got = positions.Positions.of_document([1.5, 2.0, 0.25], [3, 4, 3])
    assert got.to_json() == {"edges": [0, 64], "nll": [3.75], "bytes": [10]}
    assert positions.Positions.of_document([], []).to_json() == {"edges": [0], "nll": [], "bytes": []}


def test_a_token_that_straddles_an_edge_goes_whole_to_the_bucket_of_its_last_byte():
    # tokens of 60 and 6 bytes: the second covers offsets 60..65, so it ends in [64, 128)
    got = positions.Positions.of_document([1.0, 2.0], [60, 6])
    assert got.to_json() == {"edges": [0, 64, 128], "nll": [1.0, 2.0], "bytes": [60, 6]}
    # ending exactly on offset 63 keeps it in the first bucket
    assert positions.Positions.of_document([1.0, 2.0], [58, 6]).bytes.tolist() == [64]


def test_positions_of_different_lengths_add_by_padding():
    a = positions.Positions.from_sums([1.0], [10])
    b = positions.Positions.from_sums([2.0, 3.0, 4.0], [64, 64, 100])
    assert (a + b).to_json() == {"edges": [0, 64, 128, 256], "nll": [3.0, 3.0, 4.0], "bytes": [74, 64, 100]}


@pytest.mark.parametrize("raw, fault", [
    ({"edges": [0, 64], "nll": [1.0]}, "'edges', 'nll' and 'bytes'"),
    ({"edges": [0, 100], "nll": [1.0], "bytes": [3]}, "must be [0, 64]"),
    ({"edges": [0, 64], "nll": [1.0, 2.0], "bytes": [3]}, "same length"),
    ({"edges": [0, 64], "nll": [None], "bytes": [3]}, "finite numbers"),
    ({"edges": [0, 64], "nll": [1.0], "bytes": [-3]}, "integers >= 0"),
])
def test_malformed_positions_are_bad_input_naming_the_place(raw, fault):
    with pytest.raises(BadInput, match=r"cells/x\.json: document 2: .*" + fault.replace("[", r"\[").replace("]", r"\]")):
        DocumentRecord.from_json({"nll": 1.0, "bytes": 3, "clean_bytes": 3, "clean_words": 1, "positions": raw},
                                 "cells/x.json: document 2")


def test_old_records_without_positions_still_load_and_write_no_positions():
    doc = DocumentRecord.from_json({"index": 0, "nll": 1.0, "bytes": 3, "clean_bytes": 3, "clean_words": 1}, "d")
    assert doc.positions is None and "positions" not in doc.to_json()
    result = CellResult.from_json({"model": "m", "noise": "clean", "nll": 1.0, "bytes": 3, "clean_bytes": 3,
                                   "clean_words": 1, "documents": 1, **derived_metrics(1.0, 3, 3, 1)[0]}, "r")
    assert result.positions is None and check_consistent(result, [doc]) is None


# --- token byte lengths ---

def test_byte_tokenizer_lengths_count_text_bytes_and_give_an_inserted_cr_none():
    ids, lengths = ByteTokenizer().encode_with_byte_lengths("a\u00e9\n")
    assert ids == list("a\u00e9\n".encode()) and lengths.tolist() == [1, 1, 1, 1]
    crlf = ByteTokenizer(newline="crlf")
    ids, lengths = crlf.encode_with_byte_lengths("a\nb\r\nc\n")
    assert ids == crlf.encode("a\nb\r\nc\n")
    assert lengths.tolist() == [1, 0, 1, 1, 1, 1, 1, 0, 1] and lengths.sum() == len("a\nb\r\nc\n".encode())


def tiny_bpe(byte_level=True):
    tokenizers = pytest.importorskip("tokenizers")
    text = "In the beginning God created the heaven and the earth. \u00e9t\u00e9 \u4e16\u754c \U0001F600\n" * 4
    if byte_level:
        tok = tokenizers.Tokenizer(tokenizers.models.BPE())
        tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tokenizers.decoders.ByteLevel()
        trainer = tokenizers.trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                 initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    else:  # a character-level BPE that knows no bytes: its lengths come from offsets
        tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="[UNK]"))
        tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
        trainer = tokenizers.trainers.BpeTrainer(vocab_size=120, special_tokens=["[UNK]", "<|endoftext|>"])
    tok.train_from_iterator([text], trainer)
    return SubwordTokenizer(tok, eos_token_id=tok.token_to_id("<|endoftext|>"))


def test_byte_level_bpe_lengths_are_the_bytes_each_piece_decodes_to():
    tok = tiny_bpe()
    text = "The earth \u00e9t\u00e9 \u4e16\u754c\U0001F600 zz\n"
    ids, lengths = tok.encode_with_byte_lengths(text)
    assert ids == tok.encode(text) and lengths.sum() == len(text.encode())
    # the byte-level alphabet maps one character of a piece to one byte
    assert lengths.tolist() == [len(tok.tokenizer.id_to_token(i)) for i in ids]
    assert any(length == 1 and tok.tokenizer.id_to_token(i) not in text for i, length in zip(ids, lengths))


def test_offsets_give_lengths_for_other_tokenizers_and_count_bytes_not_characters():
    tok = tiny_bpe(byte_level=False)
    text = "the earth \u00e9t\u00e9 \u4e16\u754c"
    ids, lengths = tok.encode_with_byte_lengths(text)
    assert lengths.sum() == len(text.encode())
    ends = np.cumsum(lengths)
    offsets = tok.tokenizer.encode(text, add_special_tokens=False).offsets
    assert ends.tolist() == [len(text[:end].encode()) for _, end in offsets]


# --- scoring ---

def byte_mamba(seed=0):
    from robustbench_bytes.models.mamba import MambaLM

    torch.manual_seed(seed)
    module = MambaLM({"d_model": 16, "n_layer": 1, "vocab_size": 256, "ssm_cfg": {"d_state": 4},
                      "rms_norm": False, "tie_embeddings": False}).eval()
    module.scan_backend = "reference"
    return in_memory_model(module, ByteTokenizer(), "mamba", "byte", vocab_size=256,
                           info={"config": {"robustbench": {"train_length_bytes": 128}}})


def gpt(tokenizer, vocab_size, block_size=16, seed=0):
    torch.manual_seed(seed)
    module = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=1, n_head=2, d_model=16)).eval()
    return in_memory_model(module, tokenizer, "gpt", tokenizer.level, vocab_size=vocab_size)


DOCS = ["In the beginning God created the heaven and the earth.\n" * 5, "x", "",
        "And God said, Let there be light: \u00e9\u4e16\u754c\n" * 3]


def assert_sums_equal_totals(cell):
    result = cell.result
    assert check_consistent(result, cell.documents) is None
    assert sum(result.positions["bytes"]) == result.bytes
    assert math.fsum(result.positions["nll"]) == pytest.approx(result.nll, rel=1e-12)
    for doc in cell.documents:
        assert sum(doc.positions["bytes"]) == doc.bytes
        assert math.fsum(doc.positions["nll"]) == pytest.approx(doc.nll, rel=1e-12, abs=1e-12)
    summed = positions.total(positions.Positions.from_json(d.positions, "d") for d in cell.documents)
    assert result.positions["bytes"] == summed.bytes.tolist()
    assert result.positions["nll"] == pytest.approx(summed.nll.tolist(), rel=1e-12)


def test_bucket_sums_equal_the_totals_for_streamed_and_windowed_models():
    for model in (byte_mamba(), gpt(ByteTokenizer(), 256)):
        cell = scoring.score_corpus(model, Corpus("c", DOCS), batch_size=3, progress=False)
        assert_sums_equal_totals(cell)
        assert cell.result.positions["edges"] == [0, 64, 128, 256, 512]
        assert cell.documents[2].positions == {"edges": [0], "nll": [], "bytes": []}


def test_noised_cells_bucket_offsets_of_the_noised_text():
    cell = scoring.score_corpus(byte_mamba(), Corpus("c", DOCS), noise="antspeak", progress=False)
    assert_sums_equal_totals(cell)
    assert cell.result.bytes > cell.result.clean_bytes and sum(cell.result.positions["bytes"]) == cell.result.bytes


def test_a_byte_model_in_chunks_of_7_gives_the_buckets_of_one_chunk():
    model = byte_mamba(seed=1)
    one = scoring.score_corpus(model, Corpus("c", DOCS), chunk_size=4096, progress=False)
    sevens = scoring.score_corpus(model, Corpus("c", DOCS), chunk_size=7, batch_size=2, progress=False)
    for a, b in zip([one.result] + one.documents, [sevens.result] + sevens.documents):
        assert a.positions["bytes"] == b.positions["bytes"]
        assert a.positions["nll"] == pytest.approx(b.positions["nll"], rel=1e-5, abs=1e-6)


def direct_token_nll(module, seq):
    """Per-token NLL of seq[1:] from one forward pass over seq[:-1]."""
    with torch.no_grad():
        logits = module(torch.tensor([seq[:-1]]))
        logits = logits[0] if isinstance(logits, tuple) else logits
    logp = F.log_softmax(logits.reshape(len(seq) - 1, -1).double(), dim=-1)
    return (-logp[torch.arange(len(seq) - 1), torch.tensor(seq[1:])]).tolist()


def test_subword_scoring_matches_a_sequential_reference_with_straddling_tokens():
    tok = tiny_bpe()
    text = "In the beginning God created the heaven and the earth. \u00e9t\u00e9 \u4e16\u754c \U0001F600\n" * 2
    ids = tok.encode(text)
    model = gpt(tok, tok.vocab_size, block_size=len(ids) + 1)
    cell = scoring.score_corpus(model, Corpus("c", [text]), progress=False)
    pieces = [tok.tokenizer.id_to_token(i) for i in ids]
    lengths = [len(p) for p in pieces]  # byte-level pieces: one character per byte
    ends = np.cumsum(lengths)
    assert any(e - n < 64 <= e - 1 for e, n in zip(ends, lengths) if n > 1) or \
        any(e - n < 128 <= e - 1 for e, n in zip(ends, lengths) if n > 1), "no multi-byte token straddles an edge"
    want_nll, want_bytes = reference_positions(direct_token_nll(model.module, tok.prefix_ids + ids), lengths)
    assert cell.result.positions["bytes"] == want_bytes
    assert cell.result.positions["nll"] == pytest.approx(want_nll, rel=1e-5)


def test_windowed_positions_do_not_depend_on_batching():
    tok = tiny_bpe()
    model = gpt(tok, tok.vocab_size, block_size=8)
    docs = [d * 2 for d in DOCS]
    a = scoring.score_corpus(model, Corpus("c", docs), batch_size=1, progress=False)
    b = scoring.score_corpus(model, Corpus("c", docs), batch_size=5, progress=False)
    assert_sums_equal_totals(b)
    for x, y in zip(a.documents, b.documents):
        assert x.positions["bytes"] == y.positions["bytes"]
        assert x.positions["nll"] == pytest.approx(y.positions["nll"], rel=1e-5, abs=1e-6)


def test_positions_can_be_left_out_and_a_tokenizer_without_lengths_gives_none():
    model = byte_mamba()
    assert scoring.score_corpus(model, Corpus("c", DOCS), progress=False, record_positions=False).result.positions is None

    class PlainBytes:
        prefix_ids = [10]

        def encode(self, text):
            return list(text.encode())

        def describe_prefix(self):
            return "byte 0x0a"

    model.tokenizer = PlainBytes()
    cell = scoring.score_corpus(model, Corpus("c", DOCS), progress=False)
    assert cell.result.positions is None and all(d.positions is None for d in cell.documents)
    assert check_consistent(cell.result, cell.documents) is None


def test_tampered_positions_fail_the_consistency_check():
    cell = scoring.score_corpus(byte_mamba(), Corpus("c", DOCS), progress=False)
    from dataclasses import replace

    bad = dict(cell.result.positions, bytes=[b + 1 for b in cell.result.positions["bytes"]])
    assert "positions hold" in check_consistent(replace(cell.result, positions=bad), cell.documents)
    doc = cell.documents[0]
    bad_doc = replace(doc, positions=dict(doc.positions, nll=[x * 2 for x in doc.positions["nll"]]))
    assert "document 0" in check_consistent(cell.result, [bad_doc] + cell.documents[1:])


# --- model metadata ---

def test_declared_train_length_from_config_json():
    model = byte_mamba()
    assert lengths.declared_train_length(model) == {"bytes": 128, "tokens": 128}
    cell = scoring.score_corpus(model, Corpus("c", ["abc"]), progress=False)
    assert (cell.result.train_length_bytes, cell.result.train_length_tokens) == (128, 128)
    model.level = "subword"
    model.info = {"config": {"robustbench": {"train_config": {"seq_len": 256}}}}  # an older zoo model
    assert lengths.declared_train_length(model) == {"bytes": None, "tokens": 256}
    model.info = {"config": {"robustbench": {"train_length_bytes": "8192"}}}  # not a number: unknown
    assert lengths.declared_train_length(model) == {"bytes": None, "tokens": None}


def test_decode_length_differences_serve_tokenizers_without_offsets():
    from robustbench_bytes.models.tokenization import byte_lengths_by_decoding

    pieces = {0: "\u2581In", 1: "\u2581the", 2: "\u2581\u00e9t\u00e9", 3: "!"}

    def decode(ids):  # SentencePiece style: "\u2581" is a space, dropped at the start of the text
        return "".join(pieces[i] for i in ids).replace("\u2581", " ").lstrip(" ")

    text = "In the \u00e9t\u00e9!"
    lengths = byte_lengths_by_decoding(decode, [0, 1, 2, 3], text)
    assert lengths.tolist() == [2, 4, 6, 1] and lengths.sum() == len(text.encode())
