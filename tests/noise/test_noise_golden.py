"""Golden files: the output of every noise and preset on a fixed multilingual text at seed 0. A change of
any random stream or definition fails here; regenerate with tests/noise/golden/make_golden.py only on purpose."""

import json
from pathlib import Path

import pytest

from robustbench_bytes import noise

GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDEN = json.loads((GOLDEN_DIR / "noise_golden.json").read_text(encoding="utf-8"))
TEXT = (GOLDEN_DIR / GOLDEN["input"]).read_bytes().decode("utf-8")


def test_golden_input_is_multilingual():
    for sample in ["ß", "日本語", "한국어", "😀", "Σίσυφος", "Русский", "e\u0301", "\u00a0", "\r\n", "İ"]:
        assert sample in TEXT


def test_golden_covers_every_noise_and_preset():
    specs = set(GOLDEN["outputs"])
    assert {s.split(":")[0] for s in specs} >= set(noise.NOISES)
    for preset in noise.PRESETS:
        assert set(noise.expand(preset)) <= specs, preset


@pytest.mark.parametrize("spec", sorted(GOLDEN["outputs"]))
def test_golden_output(spec):
    assert noise.apply(TEXT, spec, seed=GOLDEN["seed"]) == GOLDEN["outputs"][spec]
