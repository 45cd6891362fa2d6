"""What the gate concludes: each comparison's verdicts from its pairs (Verdicts) and the whole gate's over its
parts (Gate, what `robustbench compare` runs): one exit code, its reason, the summary and the JSON document."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robustbench_bytes import results as results_io
from robustbench_bytes.errors import NotComparable
from robustbench_bytes.gate.outputs import gate_document
from robustbench_bytes.gate.rules import NOT_COMPARABLE, REGRESSED, Thresholds, combined_exit_code, gate_exit_code


class Verdicts:
    """What a comparison of either kind (cells, task cells) concludes from its pairs (each with a `verdict`, a
    `name` and `reasons`), the baseline cells the candidate lacks and its thresholds."""

    @property
    def regressions(self) -> list:
        return [p for p in self.pairs if p.verdict == "regressed"]

    @property
    def gaps(self) -> list[str]:
        """What the baseline measured and this comparison could not check."""
        failed = [f"{p.name} ({'; '.join(p.reasons)})" for p in self.pairs if p.verdict == "not compared"]
        return [f"{c} (missing from the candidate)" for c in self.only_baseline] + failed

    @property
    def exit_code(self) -> int:
        return gate_exit_code(bool(self.regressions), bool(self.gaps), self.thresholds.allow_missing)

    @property
    def empty(self) -> bool:
        return not self.pairs and not self.only_baseline


@dataclass
class Gate:
    """The gate over its parts: the perplexity comparison (cells.Comparison) and the task one
    (tasks.TaskComparison), each with pairs, regressions, gaps, exit_code, empty, records() and markdown()."""

    baseline: Path
    candidate: Path
    thresholds: Thresholds
    parts: list

    def __post_init__(self):
        if all(part.empty for part in self.parts):
            raise NotComparable(f"baseline {self.baseline}: holds no cells to compare (no perplexity cell in "
                                f"{results_io.RESULTS_FILE}, no task cell in tasks.json)")

    @property
    def exit_code(self) -> int:
        return combined_exit_code(*(part.exit_code for part in self.parts))

    @property
    def pairs(self) -> list:
        return [p for part in self.parts for p in part.pairs]

    def records(self) -> list[dict]:
        """Every pair of every part as the JSON lists it (short model labels in their names)."""
        return [r for part in self.parts for r in part.records()]

    @property
    def reason(self) -> str:
        """Why the gate exits as it does, in one line."""
        records = self.records()
        regressed = [r for r in records if r["verdict"] == "regressed"]
        gaps = [r for r in records if r["verdict"] == "not compared"]
        code, n = self.exit_code, len(self.pairs)

        def first(rs):
            return f"{rs[0]['name']}: {'; '.join(rs[0]['reasons'])}"

        if code == REGRESSED:
            return f"{len(regressed)} of {n} cells regressed (first: {first(regressed)})"
        if code == NOT_COMPARABLE:
            return f"{len(gaps)} baseline cell(s) could not be checked (first: {first(gaps)})"
        return f"no regression in {n} cells" + (f", {len(gaps)} not compared (allowed)" if gaps else "")

    def headline(self) -> str:
        code = self.exit_code
        if code == REGRESSED:
            return f"**FAIL: {self.reason}.**"
        if code == NOT_COMPARABLE:
            return f"**FAIL: not comparable: {self.reason}** (pass --allow-missing to accept that)."
        return f"**PASS: {self.reason}.**"

    def markdown(self) -> str:
        return "\n".join(["## robustbench compare", "", self.headline(), "",
                          f"Baseline `{self.baseline}`, candidate `{self.candidate}`."]) + "\n" + "".join(
            part.markdown() for part in self.parts)

    def document(self) -> dict:
        return gate_document(self.baseline, self.candidate, self.thresholds, self.records(), self.exit_code,
                             self.reason)
