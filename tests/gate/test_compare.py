"""`robustbench compare` on synthetic run directories: the gate's decisions and exit codes."""

import json

import pytest

from support.run_fakes import write_fake_run  # noqa: E402

from robustbench_bytes.cli import cli  # noqa: E402
from robustbench_bytes.gate import Thresholds, compare_runs  # noqa: E402
from robustbench_bytes.files import read_json, write_text_atomic  # noqa: E402


def grid(clean: float, drop: float, antspeak: float, model="m") -> dict:
    return {"clean": {model: clean}, "drop:p=0.1": {model: drop}, "antspeak": {model: antspeak}}


@pytest.fixture
def invoke(runner):
    def invoke(*args, env=None):
        return runner.invoke(cli, ["compare", *map(str, args)], env=env)

    return invoke


@pytest.fixture
def baseline(tmp_path):
    write_fake_run(tmp_path / "base", grid(2.0, 2.3, 3.0, model="ckpt-old"))
    return tmp_path / "base"


def test_a_run_against_itself_passes(baseline, invoke):
    result = invoke(baseline, baseline)
    assert result.exit_code == 0, result.output
    assert "PASS: no regression" in result.output
    assert "0 improved, 3 unchanged" in result.output


def test_a_clearly_worse_candidate_fails_and_the_reverse_passes(baseline, tmp_path, invoke):
    worse = tmp_path / "worse"
    write_fake_run(worse, grid(2.2, 2.6, 3.6, model="ckpt-new"))
    result = invoke(baseline, worse)
    assert result.exit_code == 1, result.output
    assert "FAIL: 3 of 3 cells regressed" in result.output
    reverse = invoke(worse, baseline)
    assert reverse.exit_code == 0, reverse.output
    assert "3 improved" in reverse.output


def test_a_change_below_the_threshold_passes(baseline, tmp_path, invoke):
    slightly = tmp_path / "slightly"
    write_fake_run(slightly, grid(2.005, 2.305, 3.005, model="ckpt-new"))
    assert invoke(baseline, slightly).exit_code == 0
    # ...unless the threshold is tighter than the change
    assert invoke(baseline, slightly, "--max-bpb-increase", "0.001").exit_code == 1


def test_regression_needs_the_whole_interval_past_the_threshold(tmp_path):
    # candidate noisy cells jitter by 30% per document: a mean rise of 0.02 bits is not resolved
    base, cand = tmp_path / "b", tmp_path / "c"
    write_fake_run(base, grid(2.0, 2.3, 3.0), n_docs=6, jitter=0.3)
    write_fake_run(cand, grid(2.0, 2.32, 3.0), n_docs=6, jitter=0.3, rng_seed=9)
    comparison = compare_runs(base, cand, Thresholds(max_bpb_increase=0.01))
    drop = next(p for p in comparison.pairs if p.noise == "drop:p=0.1")
    assert drop.delta_bpcb.low < 0.01 < drop.delta_bpcb.high
    assert drop.verdict == "unchanged"


def test_ppl_increase_ratio_threshold(baseline, tmp_path, invoke):
    # same clean score, noisy cells 0.1 bits worse: the word-PPL increase grows a lot
    cand = tmp_path / "cand"
    write_fake_run(cand, grid(2.0, 2.4, 3.1, model="ckpt-new"))
    loose = invoke(baseline, cand, "--max-bpb-increase", "1")
    assert loose.exit_code == 0, loose.output
    strict = invoke(baseline, cand, "--max-bpb-increase", "1", "--max-ppl-increase-ratio", "1.1")
    assert strict.exit_code == 1, strict.output
    assert "word-PPL increase" in strict.output and "baseline's" in strict.output


def test_other_corpus_is_incomparable(baseline, tmp_path, invoke):
    other = tmp_path / "other"
    write_fake_run(other, grid(2.0, 2.3, 3.0), corpus_sha="deadbeef")
    result = invoke(baseline, other)
    assert result.exit_code == 2
    assert "different corpora" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_no_common_cells_is_incomparable(tmp_path, invoke):
    a, b = tmp_path / "a", tmp_path / "b"
    write_fake_run(a, {"clean": {"x": 2.0}, "drop:p=0.1": {"x": 2.1}, "swap:p=0.1": {"x": 2.2}}, seeds=(1,))
    write_fake_run(b, {"antspeak": {"y": 2.0}})
    result = invoke(a, b)
    assert result.exit_code == 2
    assert "no common cells" in result.output


def test_failed_candidate_cell_is_a_regression(baseline, tmp_path, invoke):
    cand = tmp_path / "cand"
    write_fake_run(cand, grid(2.0, 2.3, 3.0, model="m2"), failed={("m2", "antspeak")})
    result = invoke(baseline, cand)
    assert result.exit_code == 1
    assert "candidate cell failed" in result.output


def test_multi_model_runs_pair_by_model(tmp_path, invoke):
    two = {"clean": {"a": 2.0, "b": 3.0}, "antspeak": {"a": 3.0, "b": 4.0}}
    swapped = {"clean": {"a": 3.0, "b": 2.0}, "antspeak": {"a": 4.0, "b": 3.0}}
    write_fake_run(tmp_path / "r1", two)
    write_fake_run(tmp_path / "r2", two)
    write_fake_run(tmp_path / "r3", swapped)
    assert invoke(tmp_path / "r1", tmp_path / "r2").exit_code == 0
    comparison = compare_runs(tmp_path / "r1", tmp_path / "r3")
    assert comparison.by_model and len(comparison.pairs) == 4
    assert {(p.model, p.verdict) for p in comparison.pairs} == {("a", "regressed"), ("b", "improved")}


def test_summary_is_appended_to_github_step_summary(baseline, tmp_path, invoke):
    summary = tmp_path / "summary.md"
    summary.write_text("previous step\n")
    result = invoke(baseline, baseline, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 0
    text = summary.read_text()
    assert text.startswith("previous step\n") and "## robustbench compare" in text and "PASS" in text


def test_missing_run_directory_is_exit_2(tmp_path, baseline, invoke):
    result = invoke(baseline, tmp_path / "nope")
    assert result.exit_code == 2 and "no such run directory" in result.output


def test_cells_in_one_run_only_are_listed(baseline, tmp_path, invoke):
    cand = tmp_path / "cand"
    write_fake_run(cand, {"clean": {"n": 2.0}, "drop:p=0.1": {"n": 2.3}, "swap:p=0.1": {"n": 2.5}})
    result = invoke(baseline, cand)
    assert result.exit_code == 2, result.output  # the gate fails closed on a baseline cell it could not check
    assert "missing from the candidate run: `antspeak (seed 0)`" in result.output
    assert "missing from the baseline run: `swap:p=0.1 (seed 0)`" in result.output
    allowed = invoke(baseline, cand, "--allow-missing")
    assert allowed.exit_code == 0, allowed.output
    assert "1 not compared (allowed)" in allowed.output


def set_setup(run_dir, device: str, dtype: str, noises=None) -> None:
    """Records `device` and `dtype` in the run's results (only for `noises`, default every cell)."""
    path = run_dir / "results.json"
    results = read_json(path)
    for r in results:
        if noises is None or r["noise"] in noises:
            r.update(device=device, dtype=dtype)
    write_text_atomic(path, json.dumps(results))


def test_device_and_dtype_differences_are_reported_not_gated(baseline, tmp_path, invoke):
    cand = tmp_path / "cand"
    write_fake_run(cand, grid(2.0, 2.3, 3.0, model="ckpt-new"))
    set_setup(baseline, "cpu", "float32")
    set_setup(cand, "cpu", "float32")
    same = invoke(baseline, cand)
    assert same.exit_code == 0, same.output
    assert "different device or dtype" not in same.output
    set_setup(cand, "cuda:0", "bfloat16-autocast", noises={"antspeak"})
    set_setup(cand, "cpu", "bfloat16-autocast", noises={"clean"})
    differs = invoke(baseline, cand)
    assert differs.exit_code == 0, differs.output  # a warning, not a failure
    warning = next(line for line in differs.output.splitlines() if "different device or dtype" in line)
    assert warning.startswith("⚠️ Warning: 2 paired cell(s)")
    assert "`antspeak` / seed 0: device cpu → cuda:0, dtype float32 → bfloat16-autocast" in warning
    assert "`clean` / seed 0: dtype float32 → bfloat16-autocast" in warning
    assert "drop" not in warning
