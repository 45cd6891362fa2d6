"""`robustbench report` on synthetic run directories."""

import csv
import json
import math

import pytest

from support.run_fakes import write_fake_run  # noqa: E402

from robustbench_bytes.cli import cli  # noqa: E402
from robustbench_bytes import formatting, report  # noqa: E402
from robustbench_bytes.results import metrics
from robustbench_bytes.report import plots as report_plots
from robustbench_bytes.report import text as report_text

BPCB = {
    "clean": {"mamba-a": 1.9, "gpt-b": 2.1},
    "drop:p=0.05": {"mamba-a": 2.1, "gpt-b": 2.4},
    "drop:p=0.3": {"mamba-a": 2.9, "gpt-b": 3.5},
    "repeat:p=0.3,max=3": {"mamba-a": 2.5, "gpt-b": 2.8},
    "antspeak": {"mamba-a": 3.2, "gpt-b": 5.0},
}


@pytest.fixture
def run_dir(tmp_path):
    out = tmp_path / "run"
    write_fake_run(out, BPCB, seeds=(0, 1))
    return out


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_report_writes_markdown_csv_latex_and_plots(run_dir, tmp_path, runner):
    out = tmp_path / "report"
    result = runner.invoke(cli, ["report", str(run_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("README.md", "report.csv", "report.tex", "report.html", "documents.csv"):
        assert (out / name).stat().st_size > 0
    for stem in ("bits_rise", "ppl_increase", "bits_vs_p", "clean_vs_noisy"):
        assert (out / "plots" / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / "plots" / f"{stem}.svg").read_bytes()[:2000]
    readme = (out / "README.md").read_text()
    assert "## mamba-a" in readme and "## gpt-b" in readme
    assert "plots/ppl_increase.png" in readme and readme.index("plots/bits_rise.png") < readme.index("plots/ppl")
    assert readme.index("## Leaderboard") < readme.index("## mamba-a")
    tex = (out / "report.tex").read_text()
    assert tex.count("\\begin{tabular}") == 2 and "Rise over clean" in tex
    assert "\\texttt{repeat:p=0.3,max=3}" in tex


def test_report_numbers_equal_results_json(run_dir, tmp_path):
    out = tmp_path / "report"
    report.write_report([run_dir], out, plots=False)
    results = json.loads((run_dir / "results.json").read_text())
    rows = {(r["model"], r["noise"]): r for r in read_csv(out / "report.csv")}
    clean = {r["model"]: r for r in results if r["noise"] == "clean"}
    for model in ("mamba-a", "gpt-b"):
        for noise in BPCB:
            cells = [r for r in results if r["model"] == model and r["noise"] == noise]
            row = rows[(model, noise)]
            for field in ("word_perplexity", "bits_per_byte", "bits_per_clean_byte"):
                expected = sum(c[field] for c in cells) / len(cells)
                assert float(row[field]) == pytest.approx(expected, rel=1e-12)
                assert float(row[f"{field}_low"]) <= float(row[field]) <= float(row[f"{field}_high"])
            increase = float(row["ppl_increase"])
            assert increase == pytest.approx(float(row["word_perplexity"]) - clean[model]["word_perplexity"],
                                             rel=1e-12, abs=1e-9)
            assert row["seeds"] == ("0" if noise == "clean" else "0,1")


def test_markdown_shows_the_numbers_of_the_table(run_dir, tmp_path):
    written = report.write_report([run_dir], tmp_path / "report", plots=False)
    readme = written["readme"].read_text()
    table = written["table"]
    row = table[(table["model"] == "gpt-b") & (table["noise"] == "antspeak")].iloc[0]
    assert metrics.format_value(row, "ppl_increase", interval=False, signed=True) in readme
    assert formatting.format_bits(row["bits_per_clean_byte"]) in readme
    clean = table[(table["model"] == "gpt-b") & (table["noise"] == "clean")].iloc[0]
    rise = row["bits_per_clean_byte"] - clean["bits_per_clean_byte"]
    assert row["bits_rise"] == pytest.approx(rise, rel=1e-12)
    assert row["bits_rise_low"] < rise < row["bits_rise_high"]
    assert f"{formatting.format_bits(row['bits_per_clean_byte'])} ({metrics.format_value(row, 'bits_rise', signed=True)})" in readme
    # a noisier model has a larger increase; the table must say so
    mamba = table[(table["model"] == "mamba-a") & (table["noise"] == "antspeak")].iloc[0]
    assert row["ppl_increase"] > mamba["ppl_increase"] > 0


def test_failed_cell_is_shown_not_hidden(tmp_path):
    run_dir = tmp_path / "run"
    write_fake_run(run_dir, BPCB, failed={("gpt-b", "drop:p=0.3")})
    written = report.write_report([run_dir], tmp_path / "report", plots=False)
    table = written["table"]
    row = table[(table["model"] == "gpt-b") & (table["noise"] == "drop:p=0.3")].iloc[0]
    assert row["status"] == "failed" and math.isnan(row["word_perplexity"])
    assert "failed: NonFiniteScore" in written["readme"].read_text()


def test_several_runs_are_labelled_by_run(tmp_path):
    a, b = tmp_path / "base", tmp_path / "cand"
    write_fake_run(a, BPCB)
    write_fake_run(b, BPCB, rng_seed=5)
    table = report.write_report([a, b], tmp_path / "report", plots=False)["table"]
    assert set(table["label"]) == {"mamba-a [base]", "gpt-b [base]", "mamba-a [cand]", "gpt-b [cand]"}


def test_not_a_run_directory_is_one_line_exit_2(tmp_path, runner):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(cli, ["report", str(tmp_path / "empty"), "-o", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "not a run directory" in result.output and "Traceback" not in result.output


def test_p_families_and_latex_escape():
    families = report_plots.p_families(["drop:p=0.05", "drop:p=0.3", "repeat:p=0.3,max=3", "antspeak",
                                  "drop:p=0.1+swap:p=0.1", "clean"])
    assert families == {"drop": [(0.05, "drop:p=0.05"), (0.3, "drop:p=0.3")],
                        "repeat, max=3": [(0.3, "repeat:p=0.3,max=3")]}
    assert report_text.latex_escape("random_case 50% & $x") == r"random\_case 50\% \& \$x"


def test_load_runs_gives_one_row_per_cell_with_its_run(tmp_path):
    from robustbench_bytes.results import load_runs

    a, b = tmp_path / "a", tmp_path / "b"
    write_fake_run(a, BPCB, seeds=(0, 1))
    write_fake_run(b, BPCB, failed={("gpt-b", "antspeak")})
    frame = load_runs([a, b])
    assert len(frame) == 2 * (1 + 4 * 2) + 2 * 5
    assert set(frame["run"]) == {str(a), str(b)}
    assert list(frame.columns[:6]) == ["run", "model", "noise", "seed", "corpus", "status"]
    failed = frame[frame["status"] == "failed"]
    assert len(failed) == 1 and failed["bits_per_byte"].isna().all()
    single = load_runs(a)
    assert len(single) == 18 and single["word_perplexity"].notna().all()


@pytest.mark.parametrize("replicates", ["9", "100001"])
def test_report_replicates_are_bounded_like_compares(runner, run_dir, tmp_path, replicates):
    """--replicates outside 10..stats.MAX_REPLICATES is a usage error naming the option (time and memory grow
    with replicates x documents), as `compare --replicates` is."""
    from robustbench_bytes.stats import MAX_REPLICATES

    assert int(replicates) in (9, MAX_REPLICATES + 1)
    result = runner.invoke(cli, ["report", str(run_dir), "-o", str(tmp_path / "rep"), "--replicates", replicates])
    assert result.exit_code == 2 and "--replicates" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "rep").exists()
