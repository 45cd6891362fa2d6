"""--max-ppl-increase-ratio is a threshold the gate must check or say it could not (issue 21): where a word-PPL is
undefined (a text without spaces) or the baseline's increase is not positive, the pair is not compared (exit 2,
the reason in the summary's first lines) instead of passing silently; --allow-missing accepts that."""

from __future__ import annotations

from test_gate_fakes import listed, rewrite_documents
from test_run_fakes import write_fake_run

from robustbench_bytes.cli import cli
from robustbench_bytes.compare import Thresholds, compare_runs

GRID = {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 2.3}, "antspeak": {"m": 3.0}}


def gate(runner, *args):
    return runner.invoke(cli, ["compare", *map(str, args)])


def headline(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("**"))


def without_spaces(noise, documents):
    """Text with (almost) no spaces: one word in the whole corpus, so exp(nll / words) is past any float."""
    for i, doc in enumerate(documents):
        doc["clean_words"] = 1 if i == 0 else 0


def test_an_undefined_word_ppl_is_a_gap_when_the_ratio_is_asked_for(runner, tmp_path):
    for name in ("b", "c"):
        write_fake_run(tmp_path / name, GRID)
        rewrite_documents(tmp_path / name, without_spaces)
    assert all(r["word_perplexity"] is None for r in listed(tmp_path / "b"))  # as a real run stores it
    plain = gate(runner, tmp_path / "b", tmp_path / "c")
    assert plain.exit_code == 0, plain.output  # the ratio was not asked for: nothing left unchecked
    result = gate(runner, tmp_path / "b", tmp_path / "c", "--max-ppl-increase-ratio", "1.25")
    assert result.exit_code == 2, result.output  # before: exit 0, the threshold skipped
    line = headline(result.output)
    assert "could not be checked" in line and "--max-ppl-increase-ratio" in line and "word-PPL" in line
    assert gate(runner, tmp_path / "b", tmp_path / "c", "--max-ppl-increase-ratio", "1.25",
                "--allow-missing").exit_code == 0


def test_a_baseline_increase_that_is_not_positive_is_a_gap(runner, tmp_path):
    # the noise made the baseline's text easier: no ratio of increases to hold the candidate to
    grid = {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 1.7}, "antspeak": {"m": 3.0}}
    write_fake_run(tmp_path / "b", grid)
    write_fake_run(tmp_path / "c", grid)
    result = gate(runner, tmp_path / "b", tmp_path / "c", "--max-ppl-increase-ratio", "1.25")
    assert result.exit_code == 2, result.output
    assert "drop:p=0.1" in headline(result.output) and "not > 0" in headline(result.output)
    comparison = compare_runs(tmp_path / "b", tmp_path / "c", Thresholds(max_ppl_increase_ratio=1.25))
    verdicts = {p.noise: p.verdict for p in comparison.pairs}
    assert verdicts == {"clean": "unchanged", "drop:p=0.1": "not compared", "antspeak": "unchanged"}


def test_a_regression_still_wins_over_an_unchecked_ratio(runner, tmp_path):
    write_fake_run(tmp_path / "b", GRID)
    write_fake_run(tmp_path / "c", {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 2.6}, "antspeak": {"m": 3.0}})
    for name in ("b", "c"):
        rewrite_documents(tmp_path / name, without_spaces)
    result = gate(runner, tmp_path / "b", tmp_path / "c", "--max-ppl-increase-ratio", "1.25")
    assert result.exit_code == 1, result.output
