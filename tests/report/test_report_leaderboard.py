"""The report's leaderboard, intervals with too few documents, documents.csv, task-only folders and the plots'
conventions (colour-blind-safe palette, a marker per model, a caption naming the data), on synthetic runs."""

import csv
import dataclasses
import math

import pytest

from support.run_fakes import write_fake_run
from support.task_cells import write_task_cells

from robustbench_bytes import report

from robustbench_bytes.report import plots as report_plots

from robustbench_bytes.report import text as report_text
from robustbench_bytes.cli import cli
from robustbench_bytes.errors import BadInput
from robustbench_bytes.report.options import FEW_DOCUMENTS, ReportOptions

# the byte model degrades less under every noise: it must rank first
BPCB = {
    "clean": {"byte-m": 2.0, "bpe-m": 1.8},
    "drop:p=0.1": {"byte-m": 2.3, "bpe-m": 2.6},
    "antspeak": {"byte-m": 3.0, "bpe-m": 6.0},
}
FAST = ReportOptions(replicates=200)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_leaderboard_is_a_typed_value_ranked_by_noised_bits_with_paired_intervals(tmp_path):
    write_fake_run(tmp_path / "run", BPCB)
    table, board = report.build_tables([tmp_path / "run"], FAST)
    assert dataclasses.is_dataclass(board) and not table.attrs
    assert [e.model for e in board.entries] == ["byte-m", "bpe-m"] and [e.rank for e in board.entries] == [1, 2]
    for entry in board.entries:
        rows = table[(table["model"] == entry.model) & (table["noise"] != "clean")]
        clean = table[(table["model"] == entry.model) & (table["noise"] == "clean")].iloc[0]
        assert entry.noised.estimate == pytest.approx(rows["bits_per_clean_byte"].mean(), rel=1e-12)
        assert entry.clean.estimate == clean["bits_per_clean_byte"]
        assert entry.change.estimate == pytest.approx(rows["bits_rise"].mean(), rel=1e-12)
        assert entry.relative_change.estimate == pytest.approx(entry.change.estimate / entry.clean.estimate)
        for interval in (entry.noised, entry.clean, entry.change, entry.relative_change):
            assert interval.low < interval.estimate < interval.high
        # paired: the rise's interval is narrower than the noised score's (documents' difficulty cancels)
        assert entry.change.high - entry.change.low < entry.noised.high - entry.noised.low


# a weak model (clean 4.70) loses little under noise; a strong one (clean 3.27) loses more but stays better
WEAK_CLEAN = {"clean": {"weak": 4.70, "strong": 3.27}, "drop:p=0.1": {"weak": 4.80, "strong": 3.90},
              "antspeak": {"weak": 5.00, "strong": 4.30}}


def test_a_model_weak_clean_does_not_rank_first_for_losing_little(tmp_path):
    write_fake_run(tmp_path / "run", WEAK_CLEAN)
    table, board = report.build_tables([tmp_path / "run"], FAST)
    assert [e.model for e in board.entries] == ["strong", "weak"]
    weak = board.entries[1]
    assert weak.change.estimate < board.entries[0].change.estimate  # the rise alone would rank it first
    notes = " ".join(report_text.leaderboard_notes(board))
    assert "Best on noised text** (lowest mean noised bits per clean byte): strong" in notes
    assert "Most robust by the rise**: weak" in notes  # resolved: 0.2 against 0.85 bits
    assert "weak has the smallest rise and the worst clean score (4.7" in notes
    readme = report.write_report([tmp_path / "run"], tmp_path / "rep", FAST, plots=False)["readme"].read_text()
    assert "mean bits per clean byte on noised text" in readme and "compare` gates on" not in readme
    header = next(line for line in readme.splitlines() if line.startswith("| rank |"))
    assert header.split(" | ")[3].startswith("noised bits/clean byte (mean, 2 noises)")  # the first number: the ranking's
    assert "relative rise" in header and "| rise |" in header
    summary = report.summary_text(tmp_path / "run", FAST)
    assert summary.splitlines()[0].startswith("Leaderboard (ranked by mean noised bits per clean byte")
    assert "Why rank by noised text" in summary


def test_most_robust_only_where_the_order_holds(tmp_path):
    close = {"clean": {"a": 2.0, "b": 2.0}, "drop:p=0.1": {"a": 2.30, "b": 2.301}}
    write_fake_run(tmp_path / "run", close, jitter=0.05)
    board = report.build_tables([tmp_path / "run"], FAST)[1]
    notes = report_text.leaderboard_notes(board)
    assert not any("Most robust" in n for n in notes)
    assert any(n.startswith("**Smallest rise**") and "intervals overlap with" in n for n in notes)
    assert any(n.startswith("**Best on noised text**") and "intervals overlap with" in n for n in notes)


def test_a_failed_noise_leaves_the_model_unranked_and_says_why(tmp_path):
    write_fake_run(tmp_path / "run", BPCB, failed={("byte-m", "antspeak")})
    board = report.build_tables([tmp_path / "run"], FAST)[1]
    last = board.entries[-1]
    assert last.model == "byte-m" and last.rank is None and last.noised is None
    assert "antspeak" in last.missing
    assert "n/a (antspeak)" in report_text.markdown_leaderboard(board)


def test_task_leaderboard_ranks_by_mean_noised_accuracy_with_toksuite_relative_drop(tmp_path):
    from robustbench_bytes import results as results_io
    from robustbench_bytes.results import tasks_io
    from robustbench_bytes.report.tasks import build_task_tables

    out = tmp_path / "run"
    results_io.write_results(out, [])
    cells = []
    for model, acc in (("weak", {"clean": 0.40, "antspeak": 0.36}), ("strong", {"clean": 0.80, "antspeak": 0.60})):
        write_task_cells(out, acc, model=model, n=300)
        cells += tasks_io.read_task_results(out)
    tasks_io.write_task_results(out, cells)
    table, boards = build_task_tables([out], FAST)
    board = boards["t"]
    assert [e.model for e in board.entries] == ["strong", "weak"]
    for entry in board.entries:
        rows = table[table["model"] == entry.model].set_index("noise")
        assert entry.noised.estimate == pytest.approx(rows.loc["antspeak", "acc"])
        assert entry.change.estimate == pytest.approx(rows.loc["clean", "acc"] - rows.loc["antspeak", "acc"])
        assert entry.relative_change.estimate == pytest.approx(
            (rows.loc["clean", "acc"] - rows.loc["antspeak", "acc"]) / rows.loc["clean", "acc"])
        assert entry.change.low <= entry.change.estimate <= entry.change.high
    notes = " ".join(report_text.leaderboard_notes(board))
    assert "Best on noised text** (highest mean noised acc): strong" in notes
    assert "smallest drop and the worst clean score" in notes


def test_one_document_prints_na_and_warns(tmp_path, runner):
    write_fake_run(tmp_path / "one", BPCB, n_docs=1)
    result = runner.invoke(cli, ["report", str(tmp_path / "one"), "-o", str(tmp_path / "rep"), "--replicates", "50",
                                 "--no-plots"])
    assert result.exit_code == 0, result.output
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert "[n/a]" in readme and "only 1 document(s)" in readme
    assert "only 1 document(s)" in result.stderr
    rows = read_csv(tmp_path / "rep" / "report.csv")
    assert all(r["bits_per_clean_byte_low"] == "" and r["interval"].startswith("no interval") for r in rows)


def test_three_documents_give_real_intervals_and_a_warning(tmp_path):
    write_fake_run(tmp_path / "three", BPCB, n_docs=3)
    table, board = report.build_tables([tmp_path / "three"], FAST)
    assert (table["bits_per_clean_byte_low"] < table["bits_per_clean_byte_high"]).all()
    assert "[n/a]" not in report_text.text_summary(table, board, 0.95)
    assert f"below {FEW_DOCUMENTS} documents" in report.summary_text(tmp_path / "three", FAST)


def test_documents_csv_has_one_row_per_cell_and_document(tmp_path):
    results = write_fake_run(tmp_path / "run", BPCB, n_docs=5, seeds=(0, 1))
    written = report.write_report([tmp_path / "run"], tmp_path / "rep", FAST, plots=False)
    rows = read_csv(written["documents"])
    assert len(rows) == len(results) * 5
    assert len(read_csv(written["csv"])) == len(written["table"])  # report.csv: one row per model and noise
    for result in results:
        mine = [r for r in rows if r["model"] == result["model"] and r["noise"] == result["noise"]
                and int(r["seed"]) == result["seed"]]
        assert math.fsum(float(r["nll"]) for r in mine) == pytest.approx(result["nll"], rel=1e-12)
        assert sum(int(r["clean_bytes"]) for r in mine) == sum(int(r["clean_bytes"]) for r in rows[:5])


def test_terminal_summary_has_the_report_columns_in_order(tmp_path):
    write_fake_run(tmp_path / "run", BPCB)
    text = report.summary_text(tmp_path / "run", FAST)
    header = next(line for line in text.splitlines() if line.startswith("model "))
    labels = report_text.column_labels()
    positions = [header.index(label) for label in labels]
    assert positions == sorted(positions)
    assert labels[0] == "bits/clean byte"
    readme_table = report_text.markdown_model_table(report.build_table([tmp_path / "run"], FAST).iloc[:3])
    assert readme_table.splitlines()[0] == "| noise | " + " | ".join(labels) + " |"


def test_task_only_folder_reports_its_tasks(tmp_path, runner):
    out = tmp_path / "tasks-only"
    from robustbench_bytes import results as results_io

    results_io.write_results(out, [])
    write_task_cells(out, {"clean": 0.8, "antspeak": 0.5})
    result = runner.invoke(cli, ["report", str(out), "-o", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert "Multiple-choice accuracy" in readme and "### Accuracy on t" in readme and "### Perplexity" not in readme
    assert (tmp_path / "rep" / "report.html").is_file() and not (tmp_path / "rep" / "report.csv").exists()


def test_an_empty_folder_still_fails(tmp_path):
    from robustbench_bytes import results as results_io

    results_io.write_results(tmp_path / "empty", [])
    with pytest.raises(BadInput, match="no results to report"):
        report.write_report([tmp_path / "empty"], tmp_path / "rep", FAST)


def test_palette_and_markers_tell_models_apart():
    styles = [report_plots.model_style(i) for i in range(len(report_plots.PALETTE))]
    assert len({s["color"] for s in styles}) == len(styles) and len({s["marker"] for s in styles}) == len(styles)
    # Okabe-Ito: no pure red next to pure green (the two Mamba models of the old plot)
    assert "#d62728" not in report_plots.PALETTE and "#2ca02c" not in report_plots.PALETTE


def test_every_plot_carries_the_caption(tmp_path):
    write_fake_run(tmp_path / "run", {**BPCB, "drop:p=0.3": {"byte-m": 2.9, "bpe-m": 3.5}}, seeds=(0, 3))
    written = report.write_report([tmp_path / "run"], tmp_path / "rep", FAST)
    table = written["table"]
    text = report_plots.caption(table, 0.95, FAST.replicates)
    assert "12 documents" in text and f"{int(table['clean_bytes'].iloc[0]):,} clean bytes" in text
    assert "seeds 0, 3" in text and "95% bootstrap intervals" in text
    svgs = sorted(p for p in written["plots"] if p.suffix == ".svg")
    assert [p.stem for p in svgs] == sorted(["bits_rise", "ppl_increase", "bits_vs_p", "clean_vs_noisy"])
    for svg in svgs:  # text stays text in the SVG (svg.fonttype none)
        assert "12 documents" in svg.read_text(), svg.name


def test_one_task_item_prints_na_and_warns(tmp_path, runner):
    from robustbench_bytes import results as results_io

    out = tmp_path / "one-item"
    results_io.write_results(out, [])
    write_task_cells(out, {"clean": 0.8, "antspeak": 0.5}, n=1)
    result = runner.invoke(cli, ["report", str(out), "-o", str(tmp_path / "rep"), "--no-plots"])
    assert result.exit_code == 0, result.output
    readme = (tmp_path / "rep" / "README.md").read_text()
    assert "[n/a]" in readme and "drop" in readme and "only 1 item(s)" in readme


def test_least_loss_names_the_model_with_the_smallest_change_per_noise(tmp_path):
    close = {"clean": {"byte-m": 2.0, "bpe-m": 2.0}, "drop:p=0.1": {"byte-m": 2.3, "bpe-m": 2.301},
             "antspeak": {"byte-m": 3.0, "bpe-m": 6.0}}
    write_fake_run(tmp_path / "run", close)
    table = report.build_table([tmp_path / "run"], FAST)
    rows = {r["noise"]: r for r in report_text.least_loss_rows(table)}
    assert set(rows) == {"drop:p=0.1", "antspeak"}
    for noise, entry in rows.items():
        group = table[table["noise"] == noise]
        for metric in ("bits_rise", "ppl_increase"):
            assert entry[metric]["label"] == group.loc[group[metric].idxmin(), "label"]
    assert rows["antspeak"]["bits_rise"]["clear"] is True       # 1.0 against 4.0 bits: resolved
    assert rows["drop:p=0.1"]["bits_rise"]["clear"] is False    # 0.3 against 0.301: not resolved
    readme = report.write_report([tmp_path / "run"], tmp_path / "rep", FAST, plots=False)["readme"].read_text()
    assert "Which model loses least under each noise" in readme and "(intervals overlap)" in readme
