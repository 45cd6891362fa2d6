"""What the ranks of one run share out and agree on: the documents each rank scores, and the plan each rank checks
against rank 0's before it scores anything."""

from __future__ import annotations

import hashlib
import heapq
import json
from typing import Sequence


def plan_documents(sizes: Sequence[int], world_size: int, indices: Sequence[int] | None = None) -> list[list[int]]:
    """The documents `indices` (default: all, 0..len(sizes)-1) split over `world_size` ranks, balanced by bytes:
    longest first (ties: lower index first), each to the rank with the fewest bytes so far (ties: the lower
    rank). Each rank's list is in document order. Deterministic: every rank computes the same plan."""
    if world_size < 1:
        raise ValueError(f"world_size={world_size}: expected at least 1")
    indices = range(len(sizes)) if indices is None else indices
    loads = [(0, rank) for rank in range(world_size)]
    shares: list[list[int]] = [[] for _ in range(world_size)]
    for i in sorted(indices, key=lambda i: (-sizes[i], i)):
        load, rank = heapq.heappop(loads)
        shares[rank].append(i)
        heapq.heappush(loads, (load + sizes[i], rank))
    return [sorted(share) for share in shares]


def plan_fingerprint(plan: dict) -> str:
    """The sha256 of a plan's canonical JSON (keys sorted, no spaces)."""
    text = json.dumps(plan, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plan_disagreement(plans: list[dict], what: str = "run") -> str | None:
    """One line naming the ranks whose plan is not rank 0's and the first field (in rank 0's order) that
    differs, with both values; None when every rank has rank 0's fingerprint. plans: {"fingerprint", "plan"}
    of every rank, in rank order."""
    first = plans[0]
    others = [rank for rank, p in enumerate(plans) if p["fingerprint"] != first["fingerprint"]]
    if not others:
        return None
    theirs = plans[others[0]]["plan"]
    field = next((k for k in list(first["plan"]) + list(theirs) if first["plan"].get(k) != theirs.get(k)),
                 "fingerprint")
    who = f"rank {others[0]}" if len(others) == 1 else f"ranks {', '.join(map(str, others))}"
    return (f"{who} {'runs' if len(others) == 1 else 'run'} another {what} than rank 0: {field} differs "
            f"(rank 0: {_short(first['plan'].get(field))}; rank {others[0]}: {_short(theirs.get(field))}); "
            f"start every rank with the same command line, files and robustbench-bytes version")


def _short(value, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."
