"""Reliability: installed plug-ins that raise or return the wrong type (noises, corpora, model sources, tasks) are
one line naming the plug-in and its distribution, exit 2 (plugins.guarded, applied by each registry to what its
entry points give), never a traceback; inside a run, a noise that raises fails its cell (exit 1)."""

import json
import sys
import textwrap

import pytest

from support.cli_assertions import assert_one_line_error
from robustbench_bytes.cli import cli
from robustbench_bytes.data import CORPORA
from robustbench_bytes.models.resolve import MODEL_SOURCES
from robustbench_bytes.noise import NOISES
from robustbench_bytes.tasks import TASKS

HOSTILE = '''
from pathlib import Path

import numpy as np

from robustbench_bytes.data.corpus import Corpus
from robustbench_bytes.models.resolve import ModelSource, ResolvedModel
from robustbench_bytes.noise import Noise


def _raise(text, rng):
    raise ZeroDivisionError("the plug-in divided by zero")


RAISER = Noise("rb_raiser", (), "raises", _raise)
TO_INT = Noise("rb_to_int", (), "returns an int", lambda text, rng: 5)
SURROGATE = Noise("rb_surrogate", (), "returns a lone surrogate", lambda text, rng: text + "\\ud800")
BAD_CPS = Noise("rb_bad_cps", (), "returns code points past U+10FFFF",
                lambda cps, rng: np.append(cps, 0x110000), on="codepoints")
LIST_CPS = Noise("rb_list_cps", (), "returns a list", lambda cps, rng: list(cps), on="codepoints")


def int_corpus():
    return Corpus("rb-ints", [1, 2])


def boom_corpus():
    raise RuntimeError("the corpus server is down")


def _boom_resolve(spec):
    raise KeyError("no such thing")


BOOM_SOURCE = ModelSource("rb_boom", lambda spec: spec.startswith("boom:"), _boom_resolve, lambda r, d: None)
WRONG_LOAD = ModelSource("rb_wrong", lambda spec: spec.startswith("wrong:"),
                         lambda spec: ResolvedModel(spec, "rb_wrong", None, ()), lambda r, d: "a model")


def boom_task():
    raise OSError("the task file vanished")
'''

ENTRY_POINTS = """[robustbench_bytes.noises]
rb_raiser = rb_hostile:RAISER
rb_to_int = rb_hostile:TO_INT
rb_surrogate = rb_hostile:SURROGATE
rb_bad_cps = rb_hostile:BAD_CPS
rb_list_cps = rb_hostile:LIST_CPS

[robustbench_bytes.corpora]
rb-ints = rb_hostile:int_corpus
rb-boom = rb_hostile:boom_corpus

[robustbench_bytes.models]
rb_boom = rb_hostile:BOOM_SOURCE
rb_wrong = rb_hostile:WRONG_LOAD
"""

DIST = "rb-hostile 1.0"


def install(root, text: str, entry_points: str):
    (root / "rb_hostile.py").write_text(textwrap.dedent(text))
    info = root / "rb_hostile-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rb-hostile\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """The package installed for this test only: the registries load it afresh and forget it afterwards."""
    site = tmp_path / "site"
    site.mkdir()
    install(site, HOSTILE, ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    for registry in (NOISES, CORPORA, MODEL_SOURCES, TASKS):
        monkeypatch.setattr(registry, "_items", dict(registry._items))
        monkeypatch.setattr(registry, "_loaded", False)
    yield site
    sys.modules.pop("rb_hostile", None)


def noise_apply(runner, spec):
    return runner.invoke(cli, ["noise", "apply", "--noise", spec], input="an owl\n")


@pytest.mark.parametrize("name,needle", [
    ("rb_raiser", "raised ZeroDivisionError: the plug-in divided by zero"), ("rb_to_int", "returned int 5"),
    ("rb_surrogate", "lone surrogate"), ("rb_bad_cps", "not a code point"), ("rb_list_cps", "returned list"),
])
def test_a_noise_that_raises_or_returns_the_wrong_type(runner, hostile, name, needle):
    assert_one_line_error(noise_apply(runner, name), f"noise plug-in {name!r}", DIST, "its transform", needle)


@pytest.mark.parametrize("name,needle", [("rb-ints", "document 0 is int 1"),
                                         ("rb-boom", "raised RuntimeError: the corpus server is down")])
def test_a_corpus_that_raises_or_returns_the_wrong_type(runner, hostile, tiny_mamba, name, needle):
    result = runner.invoke(cli, ["score", "--quiet", "--model", str(tiny_mamba), "--corpus", name])
    assert_one_line_error(result, f"corpus plug-in {name!r}", DIST, needle)


@pytest.mark.parametrize("spec,needle", [("boom:x", "resolve() raised KeyError"),
                                         ("wrong:x", "load() returned str 'a model'; expected a LoadedModel")])
def test_a_model_source_that_raises_or_returns_the_wrong_type(runner, hostile, tiny_corpus, spec, needle):
    result = runner.invoke(cli, ["score", "--quiet", "--model", spec, "--corpus", str(tiny_corpus)])
    assert_one_line_error(result, "model source plug-in", DIST, needle)


def test_a_task_plugin_whose_factory_raises(runner, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    install(site, HOSTILE, "[robustbench_bytes.tasks]\nrb_boom = rb_hostile:boom_task\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(TASKS, "_items", dict(TASKS._items))
    monkeypatch.setattr(TASKS, "_loaded", False)
    try:
        result = runner.invoke(cli, ["tasks"])
    finally:
        sys.modules.pop("rb_hostile", None)
    assert_one_line_error(result, "task plug-in 'rb_boom'", DIST, "raised OSError: the task file vanished")


def test_inside_a_run_a_raising_noise_is_one_line_or_a_failed_cell(runner, hostile, tiny_mamba, tiny_corpus,
                                                                     tmp_path):
    """The run's own rule decides which (a noise applied before scoring: bad input; during: a failed cell);
    either way no traceback, and the plug-in is named."""
    out = tmp_path / "run"
    result = runner.invoke(cli, ["run", "--quiet", "--model", str(tiny_mamba), "--corpus", str(tiny_corpus),
                                 "--noise", "rb_raiser", "--out", str(out)])
    assert "Traceback" not in result.output and result.exit_code in (1, 2), result.output
    if result.exit_code == 2:
        assert_one_line_error(result, "noise plug-in 'rb_raiser'", DIST, "ZeroDivisionError")
    else:
        cells = {c["noise"]: c for c in json.loads((out / "results.json").read_text())}
        assert cells["clean"]["status"] == "ok" and cells["rb_raiser"]["status"] == "failed"
        assert "ZeroDivisionError" in json.dumps(cells["rb_raiser"])


def test_well_behaved_plugins_still_work(runner, hostile):
    assert noise_apply(runner, "clean").output == "an owl\n"
    assert "rb_raiser" in runner.invoke(cli, ["noise", "list"]).output
