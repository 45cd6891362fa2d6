"""What the gate writes for CI systems (issue 25): --json (every pair with its key, both sides' values, the delta
with its interval, the threshold and the verdict, and the exit code with its reason) and --junit (one testcase per
pair, checked against the structure CI systems read); word-PPL columns written as `run` and `report` write them;
short model labels in the Markdown with the full names in the JSON. Exit codes are the same with or without
the files."""

from __future__ import annotations

import json
import math
import re
from xml.etree import ElementTree

import pytest

from support.junit import check_junit
from support.gate_fakes import listed, rewrite_documents, write_task_run
from support.run_fakes import write_fake_run

from robustbench_bytes.cli import cli
from robustbench_bytes.formatting import short_model_labels


def grid(clean: float, drop: float, antspeak: float, model="m") -> dict:
    return {"clean": {model: clean}, "drop:p=0.1": {model: drop}, "antspeak": {model: antspeak}}


def gate(runner, *args, env=None):
    return runner.invoke(cli, ["compare", *map(str, args)], env=env)


# ------------------------------------------------------------------ the JUnit structure CI systems read


def junit_cases(root) -> list[ElementTree.Element]:
    return [case for suite in root for case in suite if case.tag == "testcase"]


# ------------------------------------------------------------------ the runs


@pytest.fixture
def runs(tmp_path):
    write_fake_run(tmp_path / "base", grid(2.0, 2.3, 3.0))
    write_fake_run(tmp_path / "worse", grid(2.2, 2.6, 3.6))
    write_task_run(tmp_path / "base", {"clean": 0.8, "antspeak": 0.6})
    write_task_run(tmp_path / "worse", {"clean": 0.8, "antspeak": 0.3}, seed=1)
    return tmp_path / "base", tmp_path / "worse"


def test_json_lists_every_pair_with_values_deltas_thresholds_and_the_exit(runner, runs, tmp_path):
    out = tmp_path / "gate.json"
    result = gate(runner, *runs, "--json", out, "--max-bpb-increase", "0.05")
    assert result.exit_code == 1, result.output
    doc = json.loads(out.read_text())
    assert doc["exit_code"] == 1 and doc["result"] == "regressed" and "regressed" in doc["reason"]
    assert doc["thresholds"]["max_bpb_increase"] == 0.05
    cells = [p for p in doc["pairs"] if p["kind"] == "perplexity"]
    tasks = [p for p in doc["pairs"] if p["kind"] == "task"]
    assert len(cells) == 3 and len(tasks) == 2
    stored = {(r["noise"], r["seed"]): r for r in listed(runs[0])}
    stored_cand = {(r["noise"], r["seed"]): r for r in listed(runs[1])}
    for pair in cells:
        key = (pair["key"]["noise"], pair["key"]["seed"])
        assert pair["key"]["corpus_sha256"] == stored[key]["corpus_sha256"]
        check = pair["checks"][0]
        assert check["metric"] == "bits_per_clean_byte" and check["threshold"] == 0.05
        assert check["baseline"] == stored[key]["bits_per_clean_byte"]
        assert check["candidate"] == stored_cand[key]["bits_per_clean_byte"]
        delta = check["delta"]
        assert math.isclose(delta["estimate"], check["candidate"] - check["baseline"], rel_tol=1e-9)
        assert delta["low"] <= delta["estimate"] <= delta["high"] and delta["confidence"] == 0.95
        assert pair["verdict"] == ("regressed" if delta["low"] > 0.05 else pair["verdict"])
        assert pair["baseline"]["model"] == "m" and pair["baseline"]["cell"] == stored[key]["cell"]
    antspeak = next(p for p in tasks if p["key"]["noise"] == "antspeak")
    assert antspeak["verdict"] == "regressed" and antspeak["checks"][0]["threshold"] == -0.02
    acc = antspeak["checks"][0]
    assert acc["baseline"] == 0.6 or 0 < acc["baseline"] < 1
    assert acc["delta"]["high"] < -0.02


@pytest.mark.parametrize("case", ["identical", "regressed", "gap"])
def test_exit_codes_are_the_same_with_the_files_and_say_so_in_them(runner, runs, tmp_path, case):
    base, worse = runs
    if case == "gap":
        write_fake_run(tmp_path / "partial", {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 2.3}})
        candidate = tmp_path / "partial"
    else:
        candidate = base if case == "identical" else worse
    plain = gate(runner, base, candidate)
    with_files = gate(runner, base, candidate, "--json", tmp_path / "g.json", "--junit", tmp_path / "g.xml")
    assert plain.exit_code == with_files.exit_code == {"identical": 0, "regressed": 1, "gap": 2}[case]
    assert plain.output == with_files.output
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["exit_code"] == plain.exit_code
    root = check_junit(tmp_path / "g.xml")
    assert len(junit_cases(root)) == len(doc["pairs"])
    failures = sum(p["verdict"] == "regressed" for p in doc["pairs"])
    assert int(root.get("failures")) == failures
    assert (failures > 0) == (plain.exit_code == 1)
    assert (int(root.get("errors")) > 0) == (plain.exit_code == 2)


def test_junit_failures_carry_the_delta_and_its_interval(runner, runs, tmp_path):
    gate(runner, *runs, "--junit", tmp_path / "g.xml", "--json", tmp_path / "g.json")
    doc = json.loads((tmp_path / "g.json").read_text())
    root = check_junit(tmp_path / "g.xml")
    by_name = {case.get("name"): case for case in junit_cases(root)}
    assert set(by_name) == {p["name"] for p in doc["pairs"]}
    for pair in doc["pairs"]:
        failure = by_name[pair["name"]].find("failure")
        assert (failure is not None) == (pair["verdict"] == "regressed")
        if failure is not None:
            delta = pair["checks"][0]["delta"]
            digits = 3 if pair["kind"] == "task" else 4
            interval = f"[{delta['low']:+.{digits}f}, {delta['high']:+.{digits}f}]"
            assert interval in failure.get("message") and interval in failure.text


def test_runs_that_cannot_be_compared_still_write_both_files(runner, runs, tmp_path):
    other = tmp_path / "other"
    write_fake_run(other, grid(2.0, 2.3, 3.0), corpus_sha="deadbeef")
    result = gate(runner, runs[0], other, "--json", tmp_path / "g.json", "--junit", tmp_path / "g.xml")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["exit_code"] == 2 and "different corpora" in doc["reason"] and doc["pairs"] == []
    root = check_junit(tmp_path / "g.xml")
    (case,) = junit_cases(root)
    assert "different corpora" in case.find("error").get("message")


def test_the_files_replace_old_ones_whole(runner, runs, tmp_path):
    out = tmp_path / "reports" / "gate.json"  # a folder that does not exist yet
    out.parent.mkdir()
    out.write_text("x" * 100_000)
    assert gate(runner, runs[0], runs[0], "--json", out).exit_code == 0
    assert json.loads(out.read_text())["exit_code"] == 0
    assert not list(out.parent.glob(".*.tmp"))
    result = gate(runner, runs[0], runs[0], "--json", tmp_path)  # a folder is not a file
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


# ------------------------------------------------------------------ how numbers and models are written


def few_words(noise, documents):
    """Ten words per document: word-PPLs near 1e18, as on a text with long words."""
    for doc in documents:
        doc["clean_words"] = 10


def test_word_ppl_columns_are_written_as_run_and_report_write_them(runner, tmp_path):
    for name, drop in (("b", 2.3), ("c", 2.4)):
        write_fake_run(tmp_path / name, grid(2.0, drop, 3.0))
        rewrite_documents(tmp_path / name, few_words)
    result = gate(runner, tmp_path / "b", tmp_path / "c")
    ppl = {(run, r["noise"]): r["word_perplexity"] for run in "bc" for r in listed(tmp_path / run)}
    base_increase = ppl["b", "drop:p=0.1"] - ppl["b", "clean"]
    cand_increase = ppl["c", "drop:p=0.1"] - ppl["c", "clean"]
    assert base_increase > 1e7 and cand_increase > 1e7  # the range run/report write in 3 significant digits
    row = next(line for line in result.output.splitlines() if "`drop:p=0.1`" in line)
    assert f"+{base_increase:.3g} → +{cand_increase:.3g}" in row  # e.g. +1.08e+18, as `run` prints 1.08e+18
    assert not re.search(r"\d{1,3}(,\d{3}){3,}", result.output)  # no +1,080,019,590,798,190,464.00


def test_the_markdown_shows_short_model_labels_and_the_json_the_full_names(runner, tmp_path):
    old, new = "/data/checkpoints/2026-11/byte-mamba/final", "/data/checkpoints/2026-12/byte-mamba/step-9000"
    write_fake_run(tmp_path / "b", grid(2.0, 2.3, 3.0, model=old))
    write_fake_run(tmp_path / "c", grid(2.0, 2.3, 3.0, model=new))
    result = gate(runner, tmp_path / "b", tmp_path / "c", "--json", tmp_path / "g.json")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 3 and all(row.startswith("| final → step-9000 |") for row in rows)
    assert old not in result.output and new not in result.output
    doc = json.loads((tmp_path / "g.json").read_text())
    assert {(p["baseline"]["model"], p["candidate"]["model"]) for p in doc["pairs"]} == {(old, new)}


def test_short_labels_grow_until_they_differ():
    labels = short_model_labels(["runs/a/final", "runs/b/final", "zoo-model", "hf:org/x", "runs/c/best/"])
    assert labels == {"runs/a/final": "a/final", "runs/b/final": "b/final", "zoo-model": "zoo-model",
                      "hf:org/x": "hf:x", "runs/c/best/": "best"}
    assert len(set(short_model_labels(["x/y", "x/y/"]).values())) == 2  # never one label for two names


def test_an_allowed_gap_is_a_skipped_testcase(runner, runs, tmp_path):
    write_fake_run(tmp_path / "partial", {"clean": {"m": 2.0}, "drop:p=0.1": {"m": 2.3}})
    result = gate(runner, runs[0], tmp_path / "partial", "--allow-missing", "--junit", tmp_path / "g.xml",
                  "--json", tmp_path / "g.json")
    assert result.exit_code == 0, result.output
    root = check_junit(tmp_path / "g.xml")
    skipped = [case.get("name") for case in junit_cases(root) if case.find("skipped") is not None]
    missing = [p["name"] for p in json.loads((tmp_path / "g.json").read_text())["pairs"]
               if p["verdict"] == "not compared"]
    assert skipped == missing and any("antspeak" in name for name in skipped)
    assert root.get("errors") == "0" and root.get("failures") == "0"
