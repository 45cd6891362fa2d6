"""What the gate writes: the perplexity cells' Markdown table and JSON records, the parts both gates' tables and
records share, and the whole gate's JSON document, JUnit XML and the files they go to."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from robustbench_bytes import results as results_io
from robustbench_bytes import stats
from robustbench_bytes.formatting import (NA, format_interval, format_ppl, format_ratio, format_signed,
                                          short_model_labels)
from robustbench_bytes.gate.rules import NOT_COMPARABLE, REGRESSED, Thresholds
from robustbench_bytes.results import metrics
from robustbench_bytes.results.schema import CLEAN

GATE_FORMAT = "robustbench-compare/1"


def signed_ppl(value: float | None) -> str:
    """A word-PPL increase as every table writes a word-PPL (formatting.format_ppl), signed."""
    return format_signed(value, format_ppl)


_VERDICT_MARK = {"regressed": "❌ regressed", "improved": "✅ improved", "unchanged": "unchanged",
                 "not compared": "⚠️ not compared"}


def model_column(pairs) -> list[str]:
    """Each pair's model as tables show it: short labels (formatting.short_model_labels; the full names are in the
    JSON), 'old → new' where the two runs' models differ."""
    labels = short_model_labels(m for p in pairs for m in p.models)
    return [labels[a] if a == b else f"{labels[a]} → {labels[b]}" for a, b in (p.models for p in pairs)]


def verdict_text(verdict: str, reasons: list[str]) -> str:
    """A pair's verdict cell of a Markdown table (its reasons after it; no `|`)."""
    text = _VERDICT_MARK[verdict] + (": " + "; ".join(reasons) if reasons else "")
    return text.replace("|", "/")


def markdown(comparison) -> str:
    """The perplexity cells' part of the summary (of a cells.Comparison): the rule, a table of pairs, warnings;
    '' when there are none."""
    if comparison.empty:
        return ""
    th = comparison.thresholds
    pct = f"{th.confidence:.0%}"
    rule = (f"a cell regresses when the lower bound of the {pct} paired-bootstrap interval of Δ bits per clean "
            f"byte exceeds {th.max_bpb_increase:+g}")
    if th.max_ppl_increase_ratio is not None:
        rule += (f", or when that of the candidate's word-PPL increase over the baseline's exceeds "
                 f"{th.max_ppl_increase_ratio:g}x (where the baseline's increase is not positive: when that of the "
                 f"candidate's increase exceeds 0)")
    rule += ", or when the candidate's cell failed."
    improved = sum(p.verdict == "improved" for p in comparison.pairs)
    unchanged = sum(p.verdict == "unchanged" for p in comparison.pairs)
    unchecked = sum(p.verdict == "not compared" for p in comparison.pairs)
    labels = dict(zip(map(id, comparison.pairs), model_column(comparison.pairs)))
    primary, reported = metrics.METRICS[metrics.PRIMARY], metrics.gate_specs()
    lines = ["", "### Bits per clean byte", "",
             f"{len(comparison.regressions)} of {len(comparison.pairs)} cells regressed, {improved} improved, "
             f"{unchanged} unchanged" + (f", {unchecked} not compared" if unchecked else "") + ". Cells paired by "
             + ("model, noise and seed" if comparison.by_model else "noise and seed") + f" on the same corpus; {rule}",
             "", "| model | noise | seed | bits/clean byte (base → cand) | Δ bits/clean byte "
             f"[{pct}] | word-PPL increase (base → cand) | Δ increase [{pct}] | "
             + "".join(f"{s.label} (base → cand) | Δ {s.label} [{pct}] | " for s in reported) + "verdict |",
             "|---|---|---:|---:|---:|---:|---:|" + "---:|---:|" * len(reported) + "---|"]
    for p in comparison.pairs:
        bpcb = f"{primary.format(p.baseline_bpcb)} → {primary.format(p.candidate_bpcb)}"
        increase = (NA if p.baseline_increase is None and p.candidate_increase is None else
                    f"{signed_ppl(p.baseline_increase)} → {signed_ppl(p.candidate_increase)}")
        lines.append(f"| {labels[id(p)].replace('|', '/')} | `{p.noise}` | {p.seed} | {bpcb} | "
                     f"{format_interval(p.delta_bpcb, format_signed)} | {increase} | "
                     f"{format_interval(p.delta_increase, signed_ppl)} | "
                     + "".join(_reported_cells(p, s) for s in reported) + f"{verdict_text(p.verdict, p.reasons)} |")
    mismatched = [p for p in comparison.pairs if p.setup_differences]
    if mismatched:
        lines += ["", f"⚠️ Warning: {len(mismatched)} paired cell(s) ran on a different device or dtype, so part of "
                  "a difference may come from the arithmetic rather than the model: "
                  + "; ".join(f"{labels[id(p)]} / `{p.noise}` / seed {p.seed}: {', '.join(p.setup_differences)}"
                              for p in mismatched) + "."]
    if comparison.only_baseline:
        lines += ["", "Not compared, missing from the candidate run: "
                  + ", ".join(f"`{c}`" for c in comparison.only_baseline) + "."]
    if comparison.only_candidate:
        lines += ["", "Not compared, missing from the baseline run: "
                  + ", ".join(f"`{c}`" for c in comparison.only_candidate) + "."]
    return "\n".join(lines) + "\n"


def _reported_cells(pair, spec) -> str:
    """A reported metric's two Markdown cells of a pair: both sides' values, and the change with its interval."""
    if spec.name not in pair.reported:
        return f"{NA} | {NA} | "
    base, cand, delta = pair.reported[spec.name]
    return (f"{spec.format(base)} → {spec.format(cand)} | "
            f"{format_interval(delta, lambda v: format_signed(v, spec.format))} | ")


def _interval_json(interval: stats.Interval | None) -> dict | None:
    return None if interval is None else {"estimate": interval.estimate, "low": interval.low, "high": interval.high,
                                          "confidence": interval.confidence}


def check_json(metric: str, baseline, candidate, delta: stats.Interval | None, threshold, rule: str) -> dict:
    """One checked quantity of a pair, for the JSON: both sides' values, the delta with its interval, the
    threshold and the rule that compares them."""
    return {"metric": metric, "baseline": baseline, "candidate": candidate, "delta": _interval_json(delta),
            "threshold": threshold, "regresses_when": rule}


def pair_records(comparison) -> list[dict]:
    """Every perplexity pair (of a cells.Comparison) as the JSON output lists it."""
    th = comparison.thresholds
    records = []
    for p, label in zip(comparison.pairs, model_column(comparison.pairs)):
        checks = [check_json("bits_per_clean_byte", p.baseline_bpcb, p.candidate_bpcb, p.delta_bpcb,
                             th.max_bpb_increase, "delta.low > threshold"),
                  check_json("word_ppl_increase", p.baseline_increase, p.candidate_increase, p.delta_increase,
                             None, "reported, not gated")]
        checks += [check_json(name, b, c, delta, None, "reported, not gated")
                   for name, (b, c, delta) in p.reported.items()]
        if p.candidate_increase_ci is not None:
            checks.append(check_json("candidate_word_ppl_increase", p.baseline_increase, p.candidate_increase,
                                     p.candidate_increase_ci, 0, "delta.low > threshold (the ratio's stand-in where "
                                     "the baseline's increase is not positive; delta: the candidate's increase)"))
        elif th.max_ppl_increase_ratio is not None and p.noise != CLEAN:
            checks.append(check_json("word_ppl_increase_ratio", None, None, p.increase_ratio,
                                     th.max_ppl_increase_ratio, "delta.low > threshold (delta: candidate "
                                     "increase / baseline increase)"))
        records.append({"kind": "perplexity", "name": f"{label} / {p.noise} / seed {p.seed}", "key": p.key,
                        "baseline": {"model": p.specs[0], "cell": p.cells[0], "device": p.devices[0],
                                     "dtype": p.dtypes[0]},
                        "candidate": {"model": p.specs[1], "cell": p.cells[1], "device": p.devices[1],
                                      "dtype": p.dtypes[1]},
                        "checks": checks, "verdict": p.verdict, "reasons": list(p.reasons)})
    records += [{"kind": "perplexity", "name": c, "verdict": "not compared", "reasons": ["missing from the candidate"]}
                for c in comparison.only_baseline]
    return records


def refused_markdown(reason: str) -> str:
    """The summary of a gate that could not compare the runs at all."""
    return f"## robustbench compare\n\n**Cannot compare:** {reason}\n"


def gate_document(baseline: Path, candidate: Path, thresholds: Thresholds | None, records: list[dict],
                  code: int, reason: str) -> dict:
    """The JSON output: the runs, the thresholds, every pair and the exit code with its reason."""
    return {"format": GATE_FORMAT, "baseline": str(baseline), "candidate": str(candidate),
            "thresholds": thresholds.as_json() if thresholds else None,
            "exit_code": code, "result": {0: "passed", REGRESSED: "regressed", NOT_COMPARABLE: "not comparable"}[code],
            "reason": reason, "pairs": records}


def _case_message(record: dict) -> str:
    """A failed pair's message: its reasons, then each checked delta with its interval and threshold."""
    formats = {"word_ppl_increase": signed_ppl, "candidate_word_ppl_increase": signed_ppl,
               "word_ppl_increase_ratio": format_ratio}
    parts = list(record.get("reasons") or [])
    for check in record.get("checks") or []:
        delta = check["delta"]
        if delta is not None:
            entry = metrics.spec_of(check["metric"])
            fmt = formats.get(check["metric"]) or (
                (lambda v, f=entry.format: format_signed(v, f)) if entry is not None else format_signed)
            interval = stats.Interval(delta["estimate"], delta["low"], delta["high"], delta["confidence"])
            threshold = "" if check["threshold"] is None else f", threshold {check['threshold']:g}"
            parts.append(f"Δ {check['metric']} {format_interval(interval, fmt)} at {delta['confidence']:.0%}"
                         f"{threshold}")
    return "; ".join(parts)


def junit_xml(document: dict) -> str:
    """The JSON output as JUnit XML (the structure CI systems read: testsuites > testsuite > testcase, with a
    failure per regressed pair, an error per pair that could not be checked, or skipped when that is allowed;
    a gate that could not compare the runs at all is one testcase with an error)."""
    allow_missing = bool((document.get("thresholds") or {}).get("allow_missing"))
    suites = ElementTree.Element("testsuites", name="robustbench compare")
    kinds = {}
    for record in document["pairs"]:
        kinds.setdefault(record["kind"], []).append(record)
    if not document["pairs"]:
        kinds["gate"] = [{"kind": "gate", "name": "compare", "verdict": document["result"],
                          "reasons": [document["reason"]]}]
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for kind, records in kinds.items():
        suite = ElementTree.SubElement(suites, "testsuite", name=f"robustbench compare: {kind}")
        counts = {"tests": len(records), "failures": 0, "errors": 0, "skipped": 0}
        for record in records:
            case = ElementTree.SubElement(suite, "testcase", name=record["name"],
                                          classname=f"robustbench.compare.{kind}", time="0")
            message = _case_message(record)
            if record["verdict"] == "regressed":
                counts["failures"] += 1
                ElementTree.SubElement(case, "failure", message=message, type="regression").text = message
            elif record["verdict"] in ("not compared", "not comparable") and not (
                    allow_missing and record["verdict"] == "not compared"):
                counts["errors"] += 1
                ElementTree.SubElement(case, "error", message=message, type=record["verdict"]).text = message
            elif record["verdict"] == "not compared":
                counts["skipped"] += 1
                ElementTree.SubElement(case, "skipped", message=message)
        suite.attrib.update({k: str(v) for k, v in counts.items()}, time="0")
        totals = {k: totals[k] + counts[k] for k in totals}
    suites.attrib.update({k: str(v) for k, v in totals.items() if k != "skipped"}, time="0")
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"


def write_outputs(document: dict, json_path: Path | None, junit_path: Path | None) -> None:
    """The JSON and JUnit files, each written atomically."""
    from robustbench_bytes.files import write_text_atomic

    if json_path is not None:
        write_text_atomic(json_path, results_io.json_text(document) + "\n")
    if junit_path is not None:
        write_text_atomic(junit_path, junit_xml(document))
