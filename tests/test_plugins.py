"""Plug-ins: a separately installed package extends `noise list`, `run --noise`, `corpora` and `run --corpus` through
entry points, without edits here. The "installed package" is a module plus a .dist-info folder with its
entry_points.txt on PYTHONPATH, which is all an installer leaves behind."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from support.run_fakes import make_mamba_checkpoint

PLUGIN = '''
"""A vowel-dropping noise and a two-document corpus, shipped by a third-party package."""
from robustbench_bytes.data.corpus import Corpus
from robustbench_bytes.noise import Noise, Param


def drop_vowels(text, rng, p):
    keep = rng.random(len(text)) >= p
    return "".join(c for c, k in zip(text, keep) if k or c not in "aeiouAEIOU")


VOWEL_DROP = Noise("vowel_drop", (Param("p", "probability", 0.1),),
                   "each vowel is deleted with probability p", drop_vowels)


def tiny_corpus():
    return Corpus("tiny-plugin", ["An owl sat on an oak.\\n", "Every evening it hooted.\\n"],
                  provenance="written for the plug-in test", doc_ids=["owl", "evening"])
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    (root / "rb_vowels.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "rb_vowels-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rb-vowels\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[robustbench_bytes.noises]\nvowel_drop = rb_vowels:VOWEL_DROP\n\n"
                                           "[robustbench_bytes.corpora]\ntiny-plugin = rb_vowels:tiny_corpus\n")
    return root


def robustbench(site, *args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(site) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "robustbench_bytes", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=900)


def test_the_plugin_noise_is_listed_and_applied(site):
    listed = robustbench(site, "noise", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(l for l in listed.stdout.splitlines() if l.strip().startswith("vowel_drop"))
    assert "p=0.1" in line and "each vowel is deleted" in line and "[plugin]" in line
    applied = subprocess.run([sys.executable, "-m", "robustbench_bytes", "noise", "apply", "--noise", "vowel_drop:p=1"],
                             input="an owl sat on an oak", capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, PYTHONPATH=str(site)))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == "n wl st n n k"


def test_the_plugin_noise_and_corpus_are_scored_by_run(site, tmp_path):
    model = make_mamba_checkpoint(tmp_path / "model")
    corpora = robustbench(site, "corpora", "--json")
    assert corpora.returncode == 0, corpora.stderr
    assert {"tiny-plugin"} <= {r["name"] for r in json.loads(corpora.stdout)}
    out = tmp_path / "run"
    result = robustbench(site, "run", "--quiet", "--model", model, "--corpus", "tiny-plugin",
                         "--noise", "vowel_drop:p=0.1", "--out", out)
    assert result.returncode == 0, result.stderr
    cells = json.loads((out / "results.json").read_text())
    assert [(c["noise"], c["status"], c["corpus"], c["documents"]) for c in cells] == [
        ("clean", "ok", "tiny-plugin", 2), ("vowel_drop:p=0.1", "ok", "tiny-plugin", 2)]
    assert cells[1]["bytes"] < cells[0]["bytes"]  # vowels went


def test_a_broken_plugin_is_named_in_one_line(tmp_path):
    info = tmp_path / "broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[robustbench_bytes.noises]\nbad = no_such_module:THING\n")
    result = robustbench(tmp_path, "noise", "list")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'bad'" in lines[0] and "no_such_module" in lines[0], result.stderr


MODEL_PLUGIN = '''
"""A model source whose byte-level model generates through a decoder of its own: its network scores every byte
alike, its decoder always continues the pattern "plug-in " (and counts what it is asked)."""
import json
import os

import torch

from robustbench_bytes.models.base import LoadedModel
from robustbench_bytes.models.resolve import ModelSource, ResolvedModel
from robustbench_bytes.models.tokenization import ByteTokenizer

PATTERN = b"plug-in "


class PatternDecoder:
    def __init__(self):
        self.position, self.calls = 0, {"steps": 0, "chunks": 0, "chunk_tokens": 0}

    def _row(self):
        row = torch.zeros(256)
        row[PATTERN[self.position % len(PATTERN)]] = 1.0
        return row

    def prefill(self, ids):
        self.calls["chunks"] += 1
        return self._row()

    def feed(self, ids):
        rows = []
        for _ in ids:
            self.position += 1
            rows.append(self._row())
        return torch.stack(rows)

    def step(self, token):
        self.calls["steps"] += 1
        self.position += 1
        with open(os.environ["RB_PATTERN_LOG"], "a") as log:
            log.write(json.dumps(token) + "\\n")
        return self._row()

    def save(self):
        return self.position

    def restore(self, saved):
        self.position = saved


class Flat(torch.nn.Module):
    def forward(self, ids):
        return torch.zeros(*ids.shape, 256)


def _load(resolved, device):
    flat = Flat()
    return LoadedModel(name=resolved.spec, level="byte", architecture="pattern", module=flat,
                       tokenizer=ByteTokenizer(), device=device, checkpoint_sha256="", source="rb_pattern",
                       parameters=0, window=lambda ids, mask: flat(ids), max_length=64, vocab_size=256,
                       decoder=lambda model: PatternDecoder())


SOURCE = ModelSource("rb_pattern", lambda spec: spec == "pattern-model",
                     lambda spec: ResolvedModel(spec, "rb_pattern", None, ()), _load)
'''


def test_a_plugin_model_generates_through_its_own_decoder(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    (root / "rb_pattern.py").write_text(MODEL_PLUGIN)
    info = root / "rb_pattern-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rb-pattern\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[robustbench_bytes.models]\nrb_pattern = rb_pattern:SOURCE\n")
    log = tmp_path / "steps.jsonl"
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               RB_PATTERN_LOG=str(log))
    done = subprocess.run([sys.executable, "-m", "robustbench_bytes", "generate", "--model", "pattern-model",
                           "--prompt", "go", "--max-bytes", "20", "--json", "--quiet", "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    # the network's logits are flat (greedy would pick byte 0 for ever): only the plug-in's decoder writes this
    assert json.loads(done.stdout)["text"] == "plug-in plug-in plug"
    # and it was asked for each byte after the first, with the byte just chosen
    assert [json.loads(line) for line in log.read_text().splitlines()] == list(b"plug-in plug-in plu")
