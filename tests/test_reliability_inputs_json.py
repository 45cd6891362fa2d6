"""Reliability: JSON that Python's json module parses only partly (a number of more digits than int() converts,
arrays nested past the recursion limit) or whose strings hold a lone surrogate is one line naming the file and
exit 2 in every reader (files.parse_json is the one parser), never a traceback."""

import json
import sys

import pytest
import torch

from support.cli_assertions import assert_one_line_error
from robustbench_bytes.cli import cli
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import parse_json, read_json

DIGITS = "7" * (sys.get_int_max_str_digits() + 700)  # json.loads raises ValueError on it, not JSONDecodeError
NESTED = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError on it
SURROGATE = '"a \\udc80 b"'  # valid JSON whose value no UTF-8 output can hold
HOSTILE = {"long number": DIGITS, "deep nesting": NESTED, "lone surrogate": SURROGATE}
NEEDLES = {"long number": "digits", "deep nesting": "nested", "lone surrogate": "surrogate"}


@pytest.mark.parametrize("kind", HOSTILE)
def test_the_one_parser_turns_each_into_bad_input_naming_the_place(kind):
    text = '{"ok": 1,\n "x": ' + HOSTILE[kind] + "}"
    with pytest.raises(BadInput) as caught:
        parse_json(text, "f.json", "an object")
    message = str(caught.value)
    assert message.startswith("f.json") and NEEDLES[kind] in message and message.endswith("expected an object")
    if kind == "long number":  # where the number starts: line 2, after ` "x": `
        assert "line 2 column 7" in message


def test_a_record_of_a_jsonl_file_is_placed_at_its_own_line():
    with pytest.raises(BadInput, match=r"f.jsonl: not valid JSON at line 7 column 2"):
        parse_json("{x", "f.jsonl", line=7)
    with pytest.raises(BadInput, match=r"^f.jsonl:7: a string holds a lone surrogate"):
        parse_json('{"text": "\\ud800"}', "f.jsonl", line=7)


def test_surrogate_pairs_and_plain_escapes_still_read():
    assert parse_json('{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}', "x") == {"a": "\U0001F600", "b": "\\ud800"}
    assert parse_json(" 12345678901234567890 ", "x") == 12345678901234567890


def test_read_json_names_a_directory_and_bytes_that_are_not_utf8(tmp_path):
    with pytest.raises(BadInput, match="is a directory"):
        read_json(tmp_path)
    (tmp_path / "b.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(BadInput, match="not valid UTF-8 at byte offset 7"):
        read_json(tmp_path / "b.json")


def _set_config(model, **values):
    path = model / "config.json"
    text = path.read_text()
    config = json.loads(text)
    body = json.dumps({k: v for k, v in config.items() if k not in values})[:-1]
    path.write_text(body + "".join(f', "{k}": {v}' for k, v in values.items()) + "}")


@pytest.mark.parametrize("kind", HOSTILE)
def test_checkpoint_config_json(runner, tiny_mamba, tiny_corpus, kind):
    _set_config(tiny_mamba, d_model=HOSTILE[kind])
    result = runner.invoke(cli, ["score", "--quiet", "--model", str(tiny_mamba), "--corpus", str(tiny_corpus)])
    assert_one_line_error(result, "config.json", NEEDLES[kind])


@pytest.mark.parametrize("kind", HOSTILE)
def test_training_config(runner, tmp_path, kind):
    path = tmp_path / "cfg.json"
    path.write_text('{"name": "x", "model": {"architecture": "mamba"}, "steps": ' + HOSTILE[kind] + "}")
    result = runner.invoke(cli, ["train", "--config", str(path), "--out", str(tmp_path / "o"), "--quiet"])
    assert_one_line_error(result, str(path), NEEDLES[kind])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind", HOSTILE)
def test_corpus_jsonl_line(runner, tiny_mamba, tmp_path, kind):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "x", "id": ' + HOSTILE[kind] + "}\n")
    result = runner.invoke(cli, ["score", "--quiet", "--model", str(tiny_mamba), "--corpus", str(path)])
    assert_one_line_error(result, str(path), NEEDLES[kind], "line 2" if kind == "long number" else ":2")


def test_provenance_json_of_a_checkpoint(runner, tiny_mamba, tiny_corpus):
    (tiny_mamba / "provenance.json").write_text('{"provenance": ' + NESTED + "}")
    result = runner.invoke(cli, ["score", "--quiet", "--model", str(tiny_mamba), "--corpus", str(tiny_corpus)])
    assert_one_line_error(result, "provenance.json", "nested")


@pytest.mark.parametrize("part", ["log", "config"])
def test_the_json_inside_a_training_checkpoint(runner, tmp_path, part):
    raw = {"name": "x", "model": {"architecture": "mamba", "config": {"d_model": 8, "n_layer": 1}},
           "data": {"train": ["kjv:validation"]}, "steps": 2}
    (tmp_path / "cfg.json").write_text(json.dumps(raw))
    ckpt = tmp_path / "o" / "checkpoints" / "last.pt"
    ckpt.parent.mkdir(parents=True)
    state = {"step": 1, "model": {}, "optimizer": {}, "torch_rng": torch.zeros(1, dtype=torch.uint8),
             "sampler_rng": torch.zeros(1, dtype=torch.uint8), "log": "[]", "config": json.dumps(raw)}
    state[part] = "[" + DIGITS + "]"
    torch.save(state, ckpt)
    result = runner.invoke(cli, ["train", "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "o"),
                                 "--resume", "--quiet"])
    assert_one_line_error(result, "last.pt", part, "digits")
