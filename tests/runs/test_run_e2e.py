"""End to end on the CPU: tiny random-weight mamba_ssm checkpoints through run, report and compare."""

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from support.run_fakes import make_mamba_checkpoint, write_tiny_corpus  # noqa: E402

from robustbench_bytes.cli import cli  # noqa: E402

CONTRACT_FIELDS = ("model", "noise", "seed", "corpus", "documents", "level", "architecture", "nll", "bytes",
                   "clean_bytes", "clean_words", "tokens", "bits_per_byte", "bits_per_clean_byte",
                   "word_perplexity", "byte_perplexity", "seconds", "bytes_per_second")
TIMING_FIELDS = {"seconds", "bytes_per_second"}


def weights_sha256(directory):
    from robustbench_bytes.files import sha256_file
    from robustbench_bytes.models.checkpoint import weight_file

    return sha256_file(weight_file(directory))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    return {
        "a": make_mamba_checkpoint(root / "model-a", seed=0),
        "b": make_mamba_checkpoint(root / "model-b", seed=1),
        "sharp": make_mamba_checkpoint(root / "model-a-sharp", seed=0, head_scale=4.0),
        "corpus": write_tiny_corpus(root / "corpus", n_docs=4, words_per_doc=40),
        "corpus2": write_tiny_corpus(root / "corpus2", n_docs=4, words_per_doc=40, seed=1),
        "root": root,
    }


@pytest.fixture
def run(runner):
    def run(*args):
        result = runner.invoke(cli, ["run", "--quiet", *map(str, args)])
        return result

    return run


def results_of(run_dir):
    return json.loads((Path(run_dir) / "results.json").read_text())


def without_timings(results):
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in results]


def test_run_writes_results_documents_and_manifest(world, tmp_path, run):
    out = tmp_path / "run"
    result = run("--model", world["a"], "--model", world["b"], "--noise", "drop:p=0.1", "--noise", "antspeak",
                 "--corpus", world["corpus"], "--out", out)
    assert result.exit_code == 0, result.output
    results = results_of(out)
    assert [(Path(r["model_spec"]).name, r["noise"]) for r in results] == [
        ("model-a", "clean"), ("model-a", "drop:p=0.1"), ("model-a", "antspeak"),
        ("model-b", "clean"), ("model-b", "drop:p=0.1"), ("model-b", "antspeak")]
    for r in results:
        assert r["status"] == "ok" and r["seed"] == 0
        for name in CONTRACT_FIELDS:
            assert name in r, name
        assert r["bits_per_byte"] == pytest.approx(r["nll"] / (r["bytes"] * math.log(2)))
        assert r["word_perplexity"] == pytest.approx(math.exp(r["nll"] / r["clean_words"]))
        docs = json.loads((out / "cells" / f"{r['cell']}.json").read_text())["documents"]
        assert len(docs) == r["documents"] == 4
        assert math.fsum(d["nll"] for d in docs) == pytest.approx(r["nll"], rel=1e-12)
        assert sum(d["clean_bytes"] for d in docs) == r["clean_bytes"]
    antspeak = next(r for r in results if r["noise"] == "antspeak")
    assert antspeak["bytes"] > antspeak["clean_bytes"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["corpus"]["sha256"] == results[0]["corpus_sha256"]
    assert {m["checkpoint_sha256"] for m in manifest["models"]} == {weights_sha256(world["a"]),
                                                                     weights_sha256(world["b"])}
    assert manifest["seeds"] == [0] and "torch" in manifest["libraries"] and manifest["finished"]
    assert "bits/byte" in result.output and "6 scored, 0 reused, 0 failed" in result.output

    again = run("--model", world["a"], "--model", world["b"], "--noise", "drop:p=0.1", "--noise", "antspeak",
                "--corpus", world["corpus"], "--out", out)
    assert again.exit_code == 0, again.output
    assert "0 scored, 6 reused" in again.output
    assert results_of(out) == results  # reused cells keep even their timings


def test_changed_inputs_are_recomputed(world, tmp_path, run):
    model = shutil.copytree(world["a"], tmp_path / "model")
    out = tmp_path / "run"
    args = ["--model", model, "--noise", "drop:p=0.1", "--corpus", world["corpus"], "--out", out]
    assert run(*args).exit_code == 0
    first = results_of(out)
    # new weights in the same folder: every cell of that model is scored again
    make_mamba_checkpoint(model, seed=5)
    second_run = run(*args)
    assert "2 scored, 0 reused" in second_run.output
    second = results_of(out)
    assert [r["checkpoint_sha256"] for r in second] != [r["checkpoint_sha256"] for r in first]
    assert second[0]["nll"] != first[0]["nll"]
    # a new seed adds one cell and reuses the rest
    assert "1 scored, 2 reused" in run(*args, "--seed", "0", "--seed", "3").output
    assert [(r["noise"], r["seed"]) for r in results_of(out)] == [("clean", 0), ("drop:p=0.1", 0),
                                                                   ("drop:p=0.1", 3)]
    # a stored cell from another scoring version, or a damaged cell file, is scored again
    cell_files = sorted((out / "cells").glob("*.json"))
    record = json.loads(cell_files[0].read_text())
    record["inputs"]["scoring_version"] = "0-old"
    cell_files[0].write_text(json.dumps(record))
    cell_files[1].write_text('{"format": "robustbench-cell/1", "cell": ')
    assert "2 scored, 1 reused" in run(*args, "--seed", "0", "--seed", "3").output
    # another corpus (here: a byte limit) changes the corpus hash: everything again
    assert "2 scored, 0 reused" in run(*args, "--limit-bytes", "300").output
    assert results_of(out)[0]["clean_bytes"] <= 300


def test_a_failing_model_fails_its_cells_only(world, tmp_path, run):
    import torch

    from robustbench_bytes.models.architectures import load_network
    from robustbench_bytes.models.checkpoint import save_pretrained

    module, config = load_network(world["a"])
    with torch.no_grad():
        module.lm_head.weight.fill_(float("nan"))
    save_pretrained(module, tmp_path / "nan-model", config)
    out = tmp_path / "run"
    result = run("--model", tmp_path / "nan-model", "--model", world["b"], "--noise", "antspeak",
                 "--corpus", world["corpus"], "--out", out)
    assert result.exit_code == 1
    results = results_of(out)
    failed = [r for r in results if r["status"] == "failed"]
    assert len(failed) == 2 and all("non-finite" in r["error"].lower() for r in failed)
    assert all(r["nll"] is None for r in failed)
    assert [r["status"] for r in results if r["model_spec"] == str(world["b"])] == ["ok", "ok"]
    assert "FAILED" in result.output


def test_bad_input_is_one_line_exit_2(world, tmp_path, run):
    cases = [
        (["--model", tmp_path / "missing"], "--model"),
        (["--model", world["a"], "--noise", "drop:q=1"], "--noise"),
        (["--model", world["a"], "--suite", "nope"], "'--suite': 'nope' is not one of 'paper'"),
        (["--model", world["a"], "--corpus", tmp_path / "nope.txt"], "nope"),
        (["--model", world["a"], "--device", "tpu9"], "device 'tpu9'"),
    ]
    for args, needle in cases:
        result = run(*args, "--out", tmp_path / "r")
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_report_and_compare_on_real_runs(world, tmp_path, runner, run):
    def scored(model, corpus, name):
        out = tmp_path / name
        result = run("--model", model, "--noise", "drop:p=0.1", "--noise", "uppercase:p=0.5",
                     "--corpus", corpus, "--out", out)
        assert result.exit_code == 0, result.output
        return out

    base = scored(world["a"], world["corpus"], "base")
    sharp = scored(world["sharp"], world["corpus"], "sharp")
    other = scored(world["a"], world["corpus2"], "other")

    report_dir = tmp_path / "report"
    result = runner.invoke(cli, ["report", str(base), "-o", str(report_dir)])
    assert result.exit_code == 0, result.output
    for name in ("README.md", "report.csv", "report.tex", "plots/ppl_increase.png", "plots/bits_vs_p.svg",
                 "plots/clean_vs_noisy.png"):
        assert (report_dir / name).is_file(), name
    with open(report_dir / "report.csv", newline="") as f:
        rows = {r["noise"]: r for r in csv.DictReader(f)}
    for r in results_of(base):
        for field in ("word_perplexity", "bits_per_byte", "bits_per_clean_byte"):
            assert float(rows[r["noise"]][field]) == r[field]

    def compare(a, b):
        return runner.invoke(cli, ["compare", str(a), str(b)])

    assert compare(base, base).exit_code == 0
    worse = compare(base, sharp)
    assert worse.exit_code == 1, worse.output
    assert "regressed" in worse.output
    better = compare(sharp, base)
    assert better.exit_code == 0, better.output
    assert "improved" in better.output
    across = compare(base, other)
    assert across.exit_code == 2 and "different corpora" in across.output


def test_a_second_writer_on_the_same_run_directory_is_refused(world, tmp_path, run):
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run("--model", world["a"], "--corpus", world["corpus"], "--out", out)
    assert result.exit_code == 2
    assert "another `robustbench run` is writing" in result.output
    assert not (out / "results.json").exists()
