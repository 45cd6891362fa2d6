"""bench/gpu_model.py runs wherever it is imported (here: on the CPU, at a tiny shape)."""

import importlib.util
from pathlib import Path

import pytest


def load_gpu_model():
    path = Path(__file__).resolve().parent.parent / "bench" / "gpu_model.py"
    spec = importlib.util.spec_from_file_location("gpu_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_model_run_on_cpu_at_a_tiny_shape():
    gpu_model = load_gpu_model()
    config = {**gpu_model.MAMBABYTE_972M, "d_model": 32, "n_layer": 2}
    result = gpu_model.run("cpu", config=config, total_bytes=2048, chunk=512, batch=4)
    assert result["parameters"] > 0 and len(result["layouts"]) == 2
    for layout in result["layouts"].values():
        assert layout["bytes"] == 2048
        assert layout["mfu"] == pytest.approx(layout["bytes_per_second"] * 2 * result["parameters"] / 989e12)
        assert 0 < layout["bits_per_byte"] < 16
    assert result["bytes_per_second"] == max(r["bytes_per_second"] for r in result["layouts"].values())
