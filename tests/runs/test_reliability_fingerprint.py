"""Reliability, class 2: a stored cell is reused only when nothing that decides its numbers changed, and only
when its numbers check out. Any edit of a file the loader reads (config.json, weights, tokenizer files) or
of the scoring inputs rescores the cell; a stored result that is not finite or not the sum of its
documents is recomputed."""

import json
import math

import pytest

from support.run_fakes import make_mamba_checkpoint, write_tiny_corpus

from robustbench_bytes import results as results_io
from robustbench_bytes.cli import cli
from robustbench_bytes.models import resolve_model


@pytest.fixture
def world(tmp_path):
    return {"model": make_mamba_checkpoint(tmp_path / "model"), "corpus": write_tiny_corpus(tmp_path / "corpus"),
            "out": tmp_path / "run"}


def run(runner, world, *extra):
    result = runner.invoke(cli, ["run", "--quiet", "--model", str(world["model"]), "--corpus", str(world["corpus"]),
                                 "--noise", "drop:p=0.1", "--out", str(world["out"]), *extra])
    assert result.exit_code == 0, result.output
    tail = result.output.strip().splitlines()[-1]
    counts = dict(reversed(part.split()) for part in tail.split(";")[0].split(", "))
    return int(counts["scored"]), int(counts["reused"]), json.loads((world["out"] / "results.json").read_text())


def edit_config(directory, **robustbench):
    path = directory / "config.json"
    config = json.loads(path.read_text())
    config.setdefault("robustbench", {}).update(robustbench)
    path.write_text(json.dumps(config))


def test_an_unchanged_rerun_reuses_every_cell(runner, world):
    assert run(runner, world)[:2] == (2, 0)
    assert run(runner, world)[:2] == (0, 2)


@pytest.mark.parametrize("edit", [
    {"prefix_byte": 32},   # another context before each document
    {"newline": "crlf"},   # the README's advice for the PG19 checkpoints: every line break becomes two bytes
])
def test_editing_config_json_rescores(runner, world, edit):
    _, _, before = run(runner, world)
    edit_config(world["model"], **edit)
    scored, reused, after = run(runner, world)
    assert (scored, reused) == (2, 0)
    assert [r["nll"] for r in after] != [r["nll"] for r in before]


def test_a_new_tokenizer_file_changes_the_fingerprint(world):
    before = resolve_model(str(world["model"])).fingerprint()
    (world["model"] / "tokenizer_config.json").write_text("{}")
    assert resolve_model(str(world["model"])).fingerprint() != before


def test_editing_the_weights_rescores(runner, world):
    run(runner, world)
    make_mamba_checkpoint(world["model"], seed=5)
    assert run(runner, world)[:2] == (2, 0)


@pytest.mark.parametrize("tamper", ["nll_not_the_sum", "nan", "document_nan", "bytes_not_the_sum"])
def test_a_stored_cell_that_does_not_check_out_is_recomputed(runner, world, tamper):
    _, _, first = run(runner, world)
    cell = results_io.cell_path(world["out"], first[1]["cell"])
    record = json.loads(cell.read_text())
    if tamper == "nll_not_the_sum":
        record["result"]["nll"] *= 1.5
    elif tamper == "nan":
        record["result"]["nll"] = None
    elif tamper == "document_nan":
        record["documents"][0]["nll"] = None
    else:
        record["result"]["bytes"] += 1
    cell.write_text(json.dumps(record))
    scored, reused, again = run(runner, world)
    assert (scored, reused) == (1, 1)
    assert math.isclose(again[1]["nll"], first[1]["nll"], rel_tol=1e-12)
