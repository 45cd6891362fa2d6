"""The report's length section (report/length.py): curves from the cells' positions, the 1x..16x table, the
plots and length.csv; runs without positions give no section."""

import csv
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from support.task_cells import write_task_cells
from support.run_fakes import make_mamba_checkpoint, write_fake_run, write_tiny_corpus

from robustbench_bytes.report import length as report_length
from robustbench_bytes import results as results_io
from robustbench_bytes.cli import cli
from robustbench_bytes.report import ReportOptions, write_report

LN2 = math.log(2.0)


@pytest.fixture(scope="module")
def length_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("length")
    model = make_mamba_checkpoint(root / "tiny")
    config = json.loads((model / "config.json").read_text())
    config["robustbench"] = {"train_length_bytes": 64}
    (model / "config.json").write_text(json.dumps(config))
    corpus = write_tiny_corpus(root / "corpus", n_docs=3, words_per_doc=90)
    out = root / "run"
    result = CliRunner().invoke(cli, ["run", "--model", str(model), "--corpus", str(corpus), "--noise", "antspeak",
                                      "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_curves_are_the_cells_positions_with_intervals_around_them(length_run):
    curves = report_length.position_curves([length_run], replicates=200)
    assert [c.noise for c in curves] == ["clean", "antspeak"]
    for curve, cell in zip(curves, results_io.read_results(length_run)):
        nll, nbytes = np.array(cell.positions["nll"]), np.array(cell.positions["bytes"])
        assert curve.bytes.tolist() == nbytes.tolist()
        assert curve.bits_per_byte == pytest.approx(nll / (nbytes * LN2), rel=1e-9)
        assert (curve.low <= curve.bits_per_byte + 1e-9).all() and (curve.bits_per_byte <= curve.high + 1e-9).all()
        assert curve.train_length_bytes == 64 and curve.documents == 3


def test_at_multiple_reads_the_bucket_holding_k_times_the_training_length(length_run):
    clean = report_length.position_curves([length_run], replicates=50)[0]
    assert report_length.at_multiple(clean, 1)[0] == pytest.approx(clean.bits_per_byte[1])  # offset 64: [64, 128)
    assert report_length.at_multiple(clean, 4)[0] == pytest.approx(clean.bits_per_byte[3])  # 256: [256, 512)
    assert math.isnan(report_length.at_multiple(clean, 1 << 20)[0])  # past the longest document
    assert report_length.below_train_length(clean) == pytest.approx(clean.bits_per_byte[0])


def test_the_report_has_the_length_table_plots_and_csv(length_run, tmp_path):
    written = write_report([length_run], tmp_path / "report", ReportOptions(replicates=50))
    readme = (tmp_path / "report" / "README.md").read_text()
    assert "## Bits per byte by position" in readme and "| 1x | 2x | 4x | 8x | 16x |" in readme
    assert "plots/length.png" in readme  # one figure, a panel per noise
    names = {p.name for p in written["plots"]}
    assert {"length.png", "length.svg"} <= names and not any(n.startswith("length_") for n in names)
    svg = (tmp_path / "report" / "plots" / "length.svg").read_text()
    assert "clean text" in svg and "antspeak (dashed) and clean" in svg
    rows = list(csv.DictReader(open(tmp_path / "report" / "length.csv", encoding="utf-8")))
    assert {r["noise"] for r in rows} == {"clean", "antspeak"}
    assert rows[0]["bucket_start"] == "0" and rows[0]["bucket_end"] == "64" and rows[0]["train_length_bytes"]


def test_runs_without_positions_give_no_length_section(tmp_path):
    write_fake_run(tmp_path / "old", {"m": {"clean": 2.0, "drop:p=0.1": 2.5}}, n_docs=4)
    write_report([tmp_path / "old"], tmp_path / "report", ReportOptions(replicates=20))
    assert "Bits per byte by position" not in (tmp_path / "report" / "README.md").read_text()
    assert not (tmp_path / "report" / "length.csv").exists()


def test_the_report_reads_leaderboard_noises_perplexity_accuracy_then_length(length_run, tmp_path):
    import shutil

    from robustbench_bytes import noise
    from robustbench_bytes.data import load_corpus

    run = tmp_path / "run"
    shutil.copytree(length_run, run)
    write_task_cells(run, {"clean": 0.8, "antspeak": 0.5})
    readme = write_report([run], tmp_path / "report", ReportOptions(replicates=20))["readme"].read_text()
    sections = [line for line in readme.splitlines() if line.startswith("## ")]
    order = ["## Leaderboard", "## What each noise does", "## Bits per clean byte under each noise", "## Plots",
             "## Multiple-choice accuracy under noise", "## Bits per byte by position"]
    assert [s for s in sections if s in order] == order and sections[-1] == order[-1]
    # the example: a line of the run's corpus, and what antspeak with the run's seed makes of it
    block = readme.split("## What each noise does")[1].split("```")[1].strip("\n").splitlines()
    clean_line = block[0].split("  ", 1)[1].lstrip()
    corpus = results_io.read_results(run)[0].corpus
    assert any(clean_line in doc for doc in load_corpus(corpus).documents)
    noised = next(line for line in block if line.startswith("antspeak"))
    assert noised.endswith(noise.apply(clean_line, "antspeak", seed=0))
