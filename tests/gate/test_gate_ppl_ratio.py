"""--max-ppl-increase-ratio is a threshold the gate must check or say it could not (issue 21): where a word-PPL is
undefined (a text without spaces) or a run has no clean cell, the pair is not compared (exit 2, the reason in the
summary's first lines) instead of passing silently, and --allow-missing accepts that; where the baseline's increase
is not positive, R times it allows the candidate none (checked, not skipped)."""

from __future__ import annotations

from support.gate_fakes import listed, rewrite_documents
from support.run_fakes import write_fake_run

from robustbench_bytes.cli import cli
from robustbench_bytes.gate import Thresholds, compare_runs

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


def test_a_run_without_clean_cells_leaves_the_ratio_unchecked(runner, tmp_path):
    noisy_only = {"drop:p=0.1": {"m": 2.3}, "antspeak": {"m": 3.0}}
    write_fake_run(tmp_path / "b", noisy_only)
    write_fake_run(tmp_path / "c", noisy_only)
    assert gate(runner, tmp_path / "b", tmp_path / "c").exit_code == 0
    result = gate(runner, tmp_path / "b", tmp_path / "c", "--max-ppl-increase-ratio", "1.25")
    assert result.exit_code == 2, result.output
    assert "no clean cell" in headline(result.output)


# the noise made the baseline's text easier (a weak model under `drop`): its increase is negative
EASIER = {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 1.7}, "antspeak": {"m": 3.0}}


def test_where_the_baseline_lost_nothing_the_candidate_may_lose_nothing(runner, tmp_path):
    write_fake_run(tmp_path / "b", EASIER)
    write_fake_run(tmp_path / "same", EASIER)
    # the candidate now loses word-PPL to drop (its increase turns positive); bits per clean byte are not gated here
    write_fake_run(tmp_path / "worse", {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 2.2}, "antspeak": {"m": 3.0}})
    ratio = ("--max-ppl-increase-ratio", "1.25", "--max-bpb-increase", "5")
    same = gate(runner, tmp_path / "b", tmp_path / "same", *ratio)
    assert same.exit_code == 0, same.output  # before: the threshold skipped for drop; now checked and held
    worse = gate(runner, tmp_path / "b", tmp_path / "worse", *ratio)
    assert worse.exit_code == 1, worse.output  # before: exit 0
    comparison = compare_runs(tmp_path / "b", tmp_path / "worse",
                              Thresholds(max_ppl_increase_ratio=1.25, max_bpb_increase=5))
    drop = next(p for p in comparison.pairs if p.noise == "drop:p=0.1")
    assert drop.verdict == "regressed" and drop.baseline_increase < 0 < drop.candidate_increase_ci.low


def test_a_regression_still_wins_over_an_unchecked_ratio(runner, tmp_path):
    write_fake_run(tmp_path / "b", GRID)
    write_fake_run(tmp_path / "c", {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 2.6}, "antspeak": {"m": 3.0}})
    for name in ("b", "c"):
        rewrite_documents(tmp_path / name, without_spaces)
    result = gate(runner, tmp_path / "b", tmp_path / "c", "--max-ppl-increase-ratio", "1.25")
    assert result.exit_code == 1, result.output
