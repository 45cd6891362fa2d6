"""The rules both parts of the gate share: its thresholds, its exit codes and the model part of a pairing key."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

from robustbench_bytes import stats
from robustbench_bytes.errors import BadInput

REGRESSED, NOT_COMPARABLE = 1, 2  # the gate's exit codes (0: passed)


def gate_exit_code(regressed: bool, gaps: bool, allow_missing: bool) -> int:
    """1 when anything regressed; else 2 when something the baseline measured went unchecked (unless that is
    allowed); else 0."""
    if regressed:
        return REGRESSED
    return NOT_COMPARABLE if gaps and not allow_missing else 0


def combined_exit_code(*codes: int) -> int:
    """Several gates as one: a regression anywhere is 1; else a gap anywhere is 2; else 0."""
    return REGRESSED if REGRESSED in codes else (NOT_COMPARABLE if NOT_COMPARABLE in codes else 0)


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the gate (perplexity and task cells) and the bootstrap's settings."""

    max_bpb_increase: float = 0.01
    max_ppl_increase_ratio: float | None = None
    confidence: float = 0.95
    replicates: int = stats.DEFAULT_REPLICATES
    allow_missing: bool = False
    max_acc_drop: float = 0.02

    def __post_init__(self):
        if not math.isfinite(self.max_bpb_increase):
            raise BadInput(f"max_bpb_increase={self.max_bpb_increase}: expected a finite number")
        if self.max_ppl_increase_ratio is not None and not (math.isfinite(self.max_ppl_increase_ratio)
                                                            and self.max_ppl_increase_ratio > 0):
            raise BadInput(f"max_ppl_increase_ratio={self.max_ppl_increase_ratio}: expected a finite number > 0")
        if not (0.5 <= self.confidence < 1):  # also rejects nan
            raise BadInput(f"confidence={self.confidence}: expected a number in [0.5, 1)")
        if isinstance(self.replicates, bool) or not isinstance(self.replicates, int) \
                or not 10 <= self.replicates <= stats.MAX_REPLICATES:
            raise BadInput(f"replicates={self.replicates}: expected an integer from 10 to {stats.MAX_REPLICATES:,}")
        if not (math.isfinite(self.max_acc_drop) and 0 <= self.max_acc_drop <= 1):
            raise BadInput(f"max_acc_drop={self.max_acc_drop}: expected a number in [0, 1]")

    def as_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def model_key(result) -> str:
    """The model part of a pairing key, the same for perplexity and task cells: the model's name (a checkpoint's
    path, a zoo name, hf:PATH) with its path normalised, so that `--model ckpt/new/` and `--model ckpt/new` are
    one model."""
    name = result.model or result.model_spec
    prefix = "hf:" if name.startswith("hf:") else ""
    rest = name[len(prefix):]
    return prefix + os.path.normpath(rest) if rest else name


def pair_by_model(base_results, cand_results) -> bool:
    """Whether cells are paired by model too: when either run holds more than one model (one model each: the
    baseline's model against the candidate's, whatever their names)."""
    return len({model_key(r) for r in base_results}) > 1 or len({model_key(r) for r in cand_results}) > 1
