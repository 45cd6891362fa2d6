"""Wall time of the two user-facing runs on the built-in zoo, each in a fresh run directory:
`make run` (`robustbench run --noise antspeak`) and `make report` (`robustbench run --suite paper`, then
`robustbench report`). Goal (issue 6): `make run` under 3 minutes on 2 cores after set-up.

    .venv/bin/python bench/bench_timings.py

Writes bench/results/timings.json and bench/results/timings.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
COMMAND = ".venv/bin/python bench/bench_timings.py"
ROBUSTBENCH = [sys.executable, "-m", "robustbench_bytes"]


def timed(args: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(ROBUSTBENCH + args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"command": "robustbench " + " ".join(args), "wall_seconds": round(time.perf_counter() - start, 1),
            "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = {
            "make run": [timed(["run", "--noise", "antspeak", "--quiet", "--out", f"{tmp}/antspeak"])],
            "make report": [timed(["run", "--suite", "paper", "--quiet", "--out", f"{tmp}/paper"]),
                            timed(["report", f"{tmp}/paper", "-o", f"{tmp}/report"])],
        }
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "timings.json").write_text(json.dumps(
        {"machine": machine, "command": COMMAND, "date": date, "targets": rows}, indent=2) + "\n")
    lines = ["## `make run` and `make report` on the built-in zoo", "",
             "Fresh run directories (nothing to resume), after set-up, the three zoo models on the default corpus.", "",
             "| target | step | wall s | CPU s |", "|---|---|---:|---:|"]
    for target, steps in rows.items():
        for step in steps:
            lines.append(f"| {target} | `{step['command'].split(' --out')[0].split(' /')[0]}` "
                         f"| {step['wall_seconds']} | {step['cpu_seconds']} |")
        if len(steps) > 1:
            lines.append(f"| {target} | total | {sum(s['wall_seconds'] for s in steps):.1f} "
                         f"| {sum(s['cpu_seconds'] for s in steps):.1f} |")
    lines += ["", f"Machine: {machine}. Command: `{COMMAND}`. Date: {date}."]
    (RESULTS / "timings.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
