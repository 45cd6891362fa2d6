"""The fused `repeat` noise (one compiled pass, for large texts) gives exactly what the numpy path gives: on the
golden files with the fused path forced on, and on random code points of every size, rate and count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robustbench_bytes import noise
from robustbench_bytes.noise import transforms

GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDEN = json.loads((GOLDEN_DIR / "noise_golden.json").read_text(encoding="utf-8"))
TEXT = (GOLDEN_DIR / GOLDEN["input"]).read_bytes().decode("utf-8")


@pytest.mark.parametrize("spec", sorted(s for s in GOLDEN["outputs"] if s.startswith("repeat")))
def test_golden_repeat_outputs_through_the_fused_path(spec, monkeypatch):
    monkeypatch.setattr(transforms, "FUSED_REPEAT_MIN", 0)
    assert noise.apply(TEXT, spec, seed=GOLDEN["seed"]) == GOLDEN["outputs"][spec]


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000, 100_001])
@pytest.mark.parametrize("p, most", [(0.3, 3), (0.05, 4), (0.999, 1), (1e-4, 2), (1.0, 3)])
def test_fused_repeat_equals_the_numpy_path(n, p, most, monkeypatch):
    cps = np.random.default_rng(n).integers(0, 0x110000, size=n).astype(np.int32)
    monkeypatch.setattr(transforms, "FUSED_REPEAT_MIN", 1 << 62)
    expected = transforms.repeat(cps, np.random.default_rng(9), p, most)
    monkeypatch.setattr(transforms, "FUSED_REPEAT_MIN", 0)
    got = transforms.repeat(cps, np.random.default_rng(9), p, most)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert n <= len(got) <= (most + 1) * n and (p < 1 or len(got) >= 2 * n)
