"""The report's options (confidence, replicates, seed), the document counts its intervals need, and the bootstrap
that draws them."""

from __future__ import annotations

from dataclasses import dataclass

from robustbench_bytes import stats
from robustbench_bytes.errors import BadInput

MIN_DOCUMENTS = 2  # a bootstrap over one document is a point, not an interval
FEW_DOCUMENTS = 10  # below this the report warns that its intervals are rough


@dataclass(frozen=True)
class ReportOptions:
    confidence: float = 0.95
    replicates: int = stats.DEFAULT_REPLICATES
    seed: int = 0

    def __post_init__(self):
        if not (0.5 <= self.confidence < 1):  # also rejects nan
            raise BadInput(f"confidence={self.confidence}: expected a number in [0.5, 1)")
        if not 10 <= self.replicates <= stats.MAX_REPLICATES:
            raise BadInput(f"replicates={self.replicates}: expected an integer from 10 to {stats.MAX_REPLICATES:,}")


def bootstrap(metric, n: int, options: ReportOptions) -> stats.Interval:
    """The metric's interval over n documents (or items) under the report's options."""
    return stats.bootstrap(metric, n, confidence=options.confidence, replicates=options.replicates,
                           seed=options.seed)
