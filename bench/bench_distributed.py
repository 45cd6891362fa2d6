"""Overhead of the distributed path: `torchrun --nproc-per-node 2 -m robustbench_bytes run` on the CPU, the time
of each cell outside scoring (planning, the model load of the first cell, noising, gathering, merging, writing) as a
fraction of the cell's wall time. Goal (issue 10): under 2%.

    .venv/bin/python bench/bench_distributed.py

Per cell, from the manifest.json rank 0 writes: wall = distributed.cells[cell].seconds (rank 0, from planning
the cell to results.json written), scoring = the slowest rank's scoring seconds (ranks[].seconds);
overhead = (wall - scoring) / wall. Writes bench/results/distributed.json and bench/results/distributed.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
COMMAND = ".venv/bin/python bench/bench_distributed.py"
RANKS = 2
GOAL = 0.02
MODEL = "mambabyte-kjv-shakespeare"
RUN_ARGS = ["--model", MODEL, "--corpus", "kjv", "--limit-documents", "16", "--max-document-bytes", "6000", "--noise", "drop:p=0.1",
            "--noise", "uppercase", "--device", "cpu", "--quiet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_run(out: Path) -> float:
    """Runs the grid over RANKS CPU ranks (gloo, one thread each); returns the launch's wall seconds."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", MPLCONFIGDIR=str(out.parent / "mpl"))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(RANKS),
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
               "-m", "robustbench_bytes", "run", *RUN_ARGS, "--out", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"torchrun failed ({done.returncode}): {done.stderr[-3000:]}")
    return time.perf_counter() - start


def cell_overheads(manifest: dict) -> list[dict]:
    """Per scored cell: wall seconds on rank 0, the slowest rank's scoring seconds, and the rest as a fraction."""
    rows = []
    for cell, log in manifest["distributed"]["cells"].items():
        scoring = max(rank["seconds"] for rank in log["ranks"])
        wall = log["seconds"]
        rows.append({"cell": cell, "wall_seconds": round(wall, 3), "scoring_seconds": round(scoring, 3),
                     "overhead_seconds": round(wall - scoring, 3), "overhead_fraction": round((wall - scoring) / wall, 4),
                     "ranks": [{"rank": r["rank"], "documents": r["documents"], "bytes": r["bytes"],
                                "seconds": round(r["seconds"], 3)} for r in log["ranks"]]})
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        launch_seconds = torchrun_run(out)
        manifest = json.loads((out / "manifest.json").read_text())
    rows = cell_overheads(manifest)
    total_wall = sum(r["wall_seconds"] for r in rows)
    total_overhead = sum(r["overhead_seconds"] for r in rows)
    later = rows[1:]  # the first cell also loads the model on every rank
    later_fraction = (sum(r["overhead_seconds"] for r in later) / sum(r["wall_seconds"] for r in later)
                      if later else None)
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
    command = f"torchrun --nproc-per-node {RANKS} -m robustbench_bytes run {' '.join(RUN_ARGS)} --out DIR"
    result = {"machine": machine, "command": COMMAND, "date": date, "run": command, "ranks": RANKS,
              "launch_seconds": round(launch_seconds, 1), "cells": rows,
              "overhead_fraction_all_cells": round(total_overhead / total_wall, 4),
              "overhead_fraction_after_first_cell": None if later_fraction is None else round(later_fraction, 4),
              "goal_fraction": GOAL, "goal_met_per_cell": all(r["overhead_fraction"] < GOAL for r in rows)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "distributed.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "distributed.md").write_text(render(result))
    print(render(result))


def render(result: dict) -> str:
    """The BENCHMARKS.md section of a measurement (python bench/bench_distributed.py --render rebuilds it)."""
    rows, command, later = result["cells"], result["run"], result["overhead_fraction_after_first_cell"]
    lines = ["## Overhead of the distributed path (2 CPU ranks)", "",
             f"`{command}` (gloo, one thread a rank; the first 6 KB of 16 books of the KJV, about 48 KB a rank a cell). "
             "Per cell, from manifest.json: wall = rank 0's seconds from planning the cell to results.json written; "
             "scoring = the slowest rank's `score_corpus` seconds; overhead = the rest (planning, the model load "
             "of the first cell, noising and encoding, gathering the shards, merging, writing).", "",
             "| cell | wall s | scoring s (slowest rank) | overhead s | overhead | ranks' scoring s (bytes) |",
             "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| `{r['cell']}` | {r['wall_seconds']:.2f} | {r['scoring_seconds']:.2f} | "
                     f"{r['overhead_seconds']:.3f} | {r['overhead_fraction']:.1%} | "
                     + ", ".join(f"{x['seconds']:.2f} ({x['bytes']:,})" for x in r["ranks"]) + " |")
    met = result["goal_met_per_cell"]
    lines += ["", f"All cells: {result['overhead_fraction_all_cells']:.1%} of the wall time outside scoring"
              + (f"; after the first cell (which loads the model): {later:.1%}" if later is not None else "")
              + f". Goal under {GOAL:.0%} per cell: {'met' if met else 'missed'}."
              + ("" if met else " Where it goes: the first cell's overhead is a one-off: it includes describing "
                                "and loading the model on every rank (imports of the model and kernel modules, the "
                                "checkpoint's fingerprint) before the first document; later cells pay only planning, the store "
                                "exchange, merging and writing, a fixed cost per cell that shrinks as cells grow."),
              f"The launch as a whole (torchrun start, imports, rendezvous, every cell) took "
              f"{result['launch_seconds']:.1f} s.",
              "", f"Machine: {result['machine']}. Command: `{result['command']}`. Date: {result['date']}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--render"]:
        (RESULTS / "distributed.md").write_text(render(json.loads((RESULTS / "distributed.json").read_text())))
    else:
        main()
