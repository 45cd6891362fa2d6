"""`make bench`: run every bench/bench_<part>.py, then assemble BENCHMARKS.md from bench/results/<part>.md.

    python bench/run_all.py              # run all parts, then assemble
    python bench/run_all.py noise kernel # run some parts, then assemble
    python bench/run_all.py --assemble   # only rebuild BENCHMARKS.md from the stored results
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ORDER = ["noise", "kernel", "model", "zoo", "generate", "timings", "positions", "memory", "distributed", "gpu"]

HEADER = """# Benchmarks

Every table below was written by a script in `bench/` (`make bench` runs them all, `make bench-gpu` the GPU
part) and is assembled here by `bench/run_all.py`. The raw numbers are the JSON files in `bench/results/`.
Each table names the machine, the command and the date it was measured on. The development machine is a shared
2-core CPU box, so compare the ratios measured side by side in one run rather than absolute numbers across tables.
"""


def parts():
    found = [p.stem.removeprefix("bench_") for p in sorted((ROOT / "bench").glob("bench_*.py"))]
    return sorted(found, key=lambda p: (ORDER.index(p) if p in ORDER else len(ORDER), p))


def assemble():
    sections = [HEADER]
    names = sorted({p.stem for p in RESULTS.glob("*.md")},
                   key=lambda p: (ORDER.index(p) if p in ORDER else len(ORDER), p))
    for name in names:
        sections.append((RESULTS / f"{name}.md").read_text().strip() + "\n")
    (ROOT / "BENCHMARKS.md").write_text("\n".join(sections))
    print(f"BENCHMARKS.md: {len(names)} sections ({', '.join(names)})")


def main(argv):
    if "--assemble" not in argv:
        chosen = [a for a in argv if not a.startswith("-")] or parts()
        failed = []
        for part in chosen:
            script = ROOT / "bench" / f"bench_{part}.py"
            print(f"== bench {part}: {script.relative_to(ROOT)}", flush=True)
            if subprocess.call([sys.executable, str(script)], cwd=ROOT) != 0:
                failed.append(part)
        if failed:
            print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
    assemble()
    return 1 if "--assemble" not in argv and failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
