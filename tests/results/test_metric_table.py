"""The metric table (metrics.py): a metric added in one place (a test-only entry, nats per token) reaches the cell
JSON, the report's CSVs and the gate's output; the built-in entries keep the committed report's columns; undefined
values and registration errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from support.run_fakes import make_mamba_checkpoint, write_tiny_corpus

from robustbench_bytes.results import metrics
from robustbench_bytes import results as results_io
from robustbench_bytes.cli import cli
from robustbench_bytes.formatting import format_bits
from robustbench_bytes.report import document_columns, write_report
from robustbench_bytes.report.options import ReportOptions
from robustbench_bytes.report.table import csv_columns
from robustbench_bytes.results.schema import derived_metrics

REPO = Path(__file__).resolve().parents[2]
NOISES = ("clean", "drop:p=0.3")


@pytest.fixture
def nats_per_token():
    """A test-only metric, registered for the test and taken out after it."""
    spec = metrics.register(metrics.MetricSpec("nats_per_token", lambda s: s["nll"] / s["tokens"], "tokens",
                                               "nats/token", format_bits))
    yield spec
    metrics.unregister(spec.name)


def scored_run(out: Path, model_dir: Path, corpus_dir: Path) -> Path:
    """A run directory of one model's clean and noised cells, written by `robustbench run` (in this process, where
    the test-only metric is registered)."""
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["run", "--model", str(model_dir), "--corpus", str(corpus_dir), "--noise",
                                      NOISES[1], "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def two_runs(tmp_path, nats_per_token):
    corpus = write_tiny_corpus(tmp_path / "corpus", n_docs=6, words_per_doc=20)
    base = scored_run(tmp_path / "base", make_mamba_checkpoint(tmp_path / "m0", seed=0), corpus)
    cand = scored_run(tmp_path / "cand", make_mamba_checkpoint(tmp_path / "m1", seed=1), corpus)
    return base, cand


def test_a_registered_metric_is_in_the_cell_json_the_report_csvs_and_the_gate(two_runs, tmp_path, runner):
    base, cand = two_runs
    stored = [json.loads(p.read_text()) for p in sorted((base / results_io.CELLS_DIR).glob("*.json"))]
    assert len(stored) == len(NOISES)
    for raw in stored:  # nll / tokens from the cell's own per-document records
        nll, tokens = math.fsum(d["nll"] for d in raw["documents"]), sum(d["tokens"] for d in raw["documents"])
        assert tokens > 0 and raw["result"]["nats_per_token"] == pytest.approx(nll / tokens, rel=1e-12)
    assert all("nats_per_token" in r for r in json.loads((base / results_io.RESULTS_FILE).read_text()))
    assert all(not r.ok or results_io.read_cell(base, r.cell).problem() is None
               for r in results_io.read_results(base))  # the stored metric follows from the records

    written = write_report([base], tmp_path / "report", ReportOptions(replicates=50), plots=False)
    with open(written["csv"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {"nats_per_token", "nats_per_token_low", "nats_per_token_high"} <= set(rows[0])
    by_noise = {r["noise"]: r for r in rows}
    for raw in stored:
        row = by_noise[raw["result"]["noise"]]
        assert float(row["nats_per_token"]) == pytest.approx(raw["result"]["nats_per_token"])
        assert float(row["nats_per_token_low"]) <= float(row["nats_per_token"]) <= float(row["nats_per_token_high"])
    with open(written["documents"], newline="", encoding="utf-8") as f:
        docs = list(csv.DictReader(f))
    assert all(float(d["nats_per_token"]) == pytest.approx(float(d["nll"]) / int(d["tokens"])) for d in docs)
    assert "nats/token" in written["readme"].read_text(encoding="utf-8")

    gate_json = tmp_path / "gate.json"
    result = runner.invoke(cli, ["compare", str(base), str(cand), "--max-bpb-increase", "100", "--json",
                                 str(gate_json)])
    assert result.exit_code == 0, result.output
    assert "Δ nats/token" in result.output
    pairs = json.loads(gate_json.read_text())["pairs"]
    checks = [c for p in pairs for c in p["checks"] if c["metric"] == "nats_per_token"]
    assert len(checks) == len(NOISES)
    for check in checks:
        assert check["regresses_when"] == "reported, not gated"
        assert check["delta"]["estimate"] == pytest.approx(check["candidate"] - check["baseline"])


def test_the_built_in_entries_give_the_committed_reports_columns():
    """reports/default is what `make report` wrote before the table existed: its CSV headers are the contract."""
    with open(REPO / "reports" / "default" / "report.csv", newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == csv_columns()
    with open(REPO / "reports" / "default" / "documents.csv", newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == document_columns()


def test_a_registered_metric_is_undefined_without_its_denominator(nats_per_token):
    values, undefined = derived_metrics(10.0, 20, 20, 4, tokens=0)
    assert values["nats_per_token"] is None and undefined == {"nats_per_token": "no tokens to divide by"}
    values, undefined = derived_metrics(10.0, 20, 20, 4)  # tokens not given
    assert values["nats_per_token"] is None and "given" in undefined["nats_per_token"]
    values, undefined = derived_metrics(10.0, 20, 20, 4, tokens=5)
    assert values["nats_per_token"] == 2.0 and not undefined
    assert values["bits_per_byte"] == pytest.approx(10.0 / (20 * math.log(2)))


def test_the_formula_gives_the_same_number_on_totals_and_on_weighted_sums():
    import numpy as np

    docs = {"nll": np.array([3.0, 5.0, 7.5]), "bytes": np.array([10.0, 20.0, 15.0]),
            "clean_bytes": np.array([9.0, 21.0, 15.0]), "clean_words": np.array([2.0, 4.0, 3.0])}
    totals = {name: float(column.sum()) for name, column in docs.items()}
    ones = metrics.WeightedSums(docs, np.ones((1, 3)))
    for spec in metrics.METRICS.values():
        assert float(spec.formula(ones)[0]) == pytest.approx(spec.formula(totals), rel=1e-15)


def test_registration_refuses_a_taken_name_or_an_unknown_denominator(nats_per_token):
    with pytest.raises(ValueError, match="already"):
        metrics.register(metrics.MetricSpec("bits_rise", lambda s: 0.0, "bytes", "x", format_bits))
    with pytest.raises(ValueError, match="already"):
        metrics.register(nats_per_token)
    with pytest.raises(ValueError, match="denominator"):
        metrics.register(metrics.MetricSpec("per_line", lambda s: 0.0, "lines", "x", format_bits))
    with pytest.raises(ValueError, match="built in"):
        metrics.unregister("bits_per_byte")
