"""Byte and subword tokenizers, their prefixes, and how a checkpoint directory picks one."""

import json

import pytest
from tokenizers import ByteLevelBPETokenizer, Tokenizer, models, pre_tokenizers

from robustbench_bytes.errors import BadInput
from robustbench_bytes.models.tokenization import ByteTokenizer, SubwordTokenizer, load_tokenizer

TEXT = "Whan that Aprill\nwith his shoures soote —\r\nthe droghte of March"


def write_config(directory, **extra):
    (directory / "config.json").write_text(json.dumps({"d_model": 8, "n_layer": 1, "vocab_size": 256, **extra}))
    return directory


def test_bytes_are_utf8():
    tok = ByteTokenizer()
    ids = tok.encode(TEXT)
    assert ids == list(TEXT.encode("utf-8")) and max(ids) < 256
    assert tok.decode(ids) == TEXT
    assert tok.prefix_ids == [10] and "newline" in tok.describe_prefix()


def test_crlf_expands_line_breaks_once():
    tok = ByteTokenizer(newline="crlf")
    ids = tok.encode("a\nb\r\nc\n")
    assert bytes(ids) == b"a\r\nb\r\nc\r\n"
    assert bytes(tok.encode_bytes("a\nb")) == b"a\r\nb"
    assert tok.decode(ids) == "a\nb\nc\n"


def test_byte_options_from_config_and_overrides(tmp_path):
    write_config(tmp_path, robustbench={"newline": "crlf", "prefix_byte": 2})
    tok = load_tokenizer(tmp_path, 256)
    assert isinstance(tok, ByteTokenizer) and tok.newline == "crlf" and tok.prefix_ids == [2]
    tok = load_tokenizer(tmp_path, 256, newline="lf")
    assert tok.newline == "lf" and tok.prefix_ids == [2]


def test_bad_byte_option(tmp_path):
    write_config(tmp_path, robustbench={"newline": "cr"})
    with pytest.raises(BadInput, match="newline='cr'"):
        load_tokenizer(tmp_path, 256)


def tiny_tokenizer_json(path, specials=("<|endoftext|>", "<|padding|>")):
    vocab = {t: i for i, t in enumerate(specials)}
    for word in "the a cat sat on mat".split():
        vocab[word] = len(vocab)
    vocab["[UNK]"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(list(specials))
    tok.save(str(path))
    return vocab


def test_tokenizer_json_with_eos_prefix(tmp_path):
    vocab = tiny_tokenizer_json(tmp_path / "tokenizer.json")
    write_config(tmp_path)
    tok = load_tokenizer(tmp_path, 50)
    assert isinstance(tok, SubwordTokenizer)
    assert tok.encode("the cat sat") == [vocab["the"], vocab["cat"], vocab["sat"]]
    assert tok.bos_token_id is None and tok.prefix_ids == [vocab["<|endoftext|>"]]
    assert tok.describe_prefix() == "EOS 0 (<|endoftext|>)"


def test_bos_preferred_and_configured(tmp_path):
    vocab = tiny_tokenizer_json(tmp_path / "tokenizer.json", specials=("<s>", "</s>", "<x>"))
    write_config(tmp_path)
    assert load_tokenizer(tmp_path, 50).prefix_ids == [vocab["<s>"]]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": {"content": "<x>"}}))
    assert load_tokenizer(tmp_path, 50).prefix_ids == [vocab["<x>"]]
    assert load_tokenizer(tmp_path, 50, bos_token_id=vocab["cat"]).prefix_ids == [vocab["cat"]]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<nope>"}))
    with pytest.raises(BadInput, match="<nope>"):
        load_tokenizer(tmp_path, 50)


def test_config_json_token_ids(tmp_path):
    vocab = tiny_tokenizer_json(tmp_path / "tokenizer.json", specials=("<a>", "<b>"))
    write_config(tmp_path, bos_token_id=vocab["<b>"])
    assert load_tokenizer(tmp_path, 50).prefix_ids == [vocab["<b>"]]


def test_gpt2_bpe_files_match_the_trained_tokenizer(tmp_path):
    trainer_tok = ByteLevelBPETokenizer()
    trainer_tok.train_from_iterator([TEXT * 20, "the cat sat on the mat " * 50], vocab_size=300,
                                    special_tokens=["<|endoftext|>"])
    trainer_tok.save_model(str(tmp_path))  # vocab.json + merges.txt
    write_config(tmp_path, vocab_size=300)
    tok = load_tokenizer(tmp_path, 300)
    sample = "the cat sat on the mat, Aprill with his shoures"
    assert tok.encode(sample) == trainer_tok.encode(sample).ids
    assert tok.decode(tok.encode(sample)) == sample
    assert tok.prefix_ids == [trainer_tok.token_to_id("<|endoftext|>")]


def test_missing_tokenizer_for_subword_model(tmp_path):
    write_config(tmp_path, vocab_size=50277)
    with pytest.raises(BadInput, match="no tokenizer.json"):
        load_tokenizer(tmp_path, 50277)
    with pytest.raises(BadInput, match="no such model directory"):
        load_tokenizer(tmp_path / "gone", 256)


def test_tokenizer_larger_than_model_vocab(tmp_path):
    tiny_tokenizer_json(tmp_path / "tokenizer.json")
    with pytest.raises(BadInput, match="vocab_size is 5"):
        load_tokenizer(tmp_path, 5)
