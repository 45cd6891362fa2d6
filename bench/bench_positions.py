"""The cost of recording bits by position: scoring time with and without `positions`, same run, interleaved.

For each zoo model, the same documents are scored REPEATS times with positions and REPEATS times without, in
alternation (so load on the shared machine hits both alike); the best of each is compared as a ratio, in wall
and in CPU time of this process. Goal (issue 12): under 3%.

    .venv/bin/python bench/bench_positions.py

Writes bench/results/positions.json and bench/results/positions.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
COMMAND = ".venv/bin/python bench/bench_positions.py"
CORPUS = "kjv:long"
LIMIT_BYTES = 24_576
REPEATS = 3


def zoo_models() -> list[str]:
    from robustbench_bytes.models import zoo_names

    names = zoo_names()
    new = [n for n in names if n.endswith("-kjv-shakespeare")]
    return new if len(new) == 3 else [n for n in names if not n.endswith("-kjv-shakespeare")]


def timed(model, corpus, record: bool) -> tuple[float, float]:
    from robustbench_bytes import scoring

    wall, cpu = time.perf_counter(), time.process_time()
    scoring.score_corpus(model, corpus, progress=False, record_positions=record)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    import torch

    from robustbench_bytes import scoring
    from robustbench_bytes.corpora import load_corpus
    from robustbench_bytes.models import load_model

    corpus = load_corpus(CORPUS).limit_bytes(LIMIT_BYTES)
    rows = []
    for name in zoo_models():
        model = load_model(name)
        scoring.score_corpus(model, corpus.limit_bytes(2048), progress=False)  # warm-up
        runs = {True: [], False: []}
        for _ in range(REPEATS):
            for record in (False, True):
                runs[record].append(timed(model, corpus, record))
        best = {record: (min(w for w, _ in r), min(c for _, c in r)) for record, r in runs.items()}
        rows.append({"model": name, "level": model.level, "architecture": model.architecture,
                     "bytes": corpus.bytes, "repeats": REPEATS,
                     "without_wall_s": round(best[False][0], 3), "with_wall_s": round(best[True][0], 3),
                     "without_cpu_s": round(best[False][1], 3), "with_cpu_s": round(best[True][1], 3),
                     "wall_ratio": round(best[True][0] / best[False][0], 4),
                     "cpu_ratio": round(best[True][1] / best[False][1], 4)})
        print(rows[-1], flush=True)
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
               f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f} at the end")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "positions.json").write_text(json.dumps(
        {"machine": machine, "command": COMMAND, "date": date, "corpus": CORPUS, "limit_bytes": LIMIT_BYTES,
         "rows": rows}, indent=2) + "\n")
    lines = ["## The cost of bits by position", "",
             f"Scoring the first {corpus.bytes:,} bytes of `{CORPUS}` ({len(corpus.documents)} documents) clean, "
             f"with `positions` recorded (the default) and without (`record_positions=False`), {REPEATS} times "
             "each in alternation in one process; best of each. Goal: under 3% (ratio < 1.03).", "",
             "| model | level | without (s) | with (s) | wall ratio | CPU without (s) | CPU with (s) | CPU ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['level']} {r['architecture']} | {r['without_wall_s']:.2f} | "
                     f"{r['with_wall_s']:.2f} | {r['wall_ratio']:.3f} | {r['without_cpu_s']:.2f} | "
                     f"{r['with_cpu_s']:.2f} | {r['cpu_ratio']:.3f} |")
    lines += ["", f"Machine: {machine}. Command: `{COMMAND}`. Date: {date}."]
    (RESULTS / "positions.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
