"""Regenerate tests/noise/golden/noise_golden.json: every noise and preset applied to noise_input.txt at seed 0.

Run only when a change of the random streams is intended (it changes every noised number):
    .venv/bin/python tests/noise/golden/make_golden.py
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from robustbench_bytes import noise

HERE = Path(__file__).resolve().parent
INPUT = HERE / "noise_input.txt"
GOLDEN = HERE / "noise_golden.json"
SEED = 0

# One spec per noise (parameters that change a visible share of the text), then every preset's specs
# and a composition.
NOISE_SPECS = ["clean", "drop:p=0.1", "repeat:p=0.1", "repeat:p=0.2,max=5", "antspeak", "uppercase",
               "uppercase:p=0.5", "random_case", "flip_case:p=0.5", "swap:p=0.1", "keyboard:p=0.1",
               "insert:p=0.1", "whitespace:p_del=0.3,p_ins=0.1", "drop:p=0.1+random_case+swap:p=0.1"]


def golden_specs() -> list[str]:
    specs = [noise.canonical(s) for s in NOISE_SPECS]
    for preset in noise.PRESETS:
        specs += [s for s in noise.expand(preset) if s not in specs]
    assert {s.split(":")[0] for s in specs} >= set(noise.NOISES), "a noise has no golden output"
    return specs


def build() -> dict:
    text = INPUT.read_bytes().decode("utf-8")
    return {"seed": SEED, "input": INPUT.name,
            "outputs": {spec: noise.apply(text, spec, seed=SEED) for spec in golden_specs()}}


def main() -> None:
    data = json.dumps(build(), ensure_ascii=False, indent=1) + "\n"
    fd, tmp = tempfile.mkstemp(dir=HERE, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, GOLDEN)
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
