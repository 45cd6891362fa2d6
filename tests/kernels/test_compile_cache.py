"""The CPU kernels give the same bits whether the process compiled them or numba loaded them from its cache: a run
scored on a fresh machine (the first process compiles) equals its rerun, resume or report (later processes load)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import hashlib, json
    import numpy as np
    import torch
    from robustbench_bytes.kernels import cpu_loops, decode_cpu
    from robustbench_bytes.kernels.cpu import selective_scan_cpu
    from robustbench_bytes.models.mamba import MambaConfig, MambaLM

    digest = hashlib.sha256()
    g = torch.Generator().manual_seed(0)
    b, d, L, n = 2, 40, 150, 8
    args = [torch.randn(b, d, L, generator=g), torch.randn(b, d, L, generator=g), -torch.rand(d, n, generator=g),
            torch.randn(b, n, L, generator=g), torch.randn(b, n, L, generator=g), torch.randn(d, generator=g),
            torch.randn(b, d, L, generator=g), torch.randn(d, generator=g)]
    args = [a.requires_grad_() for a in args]
    out, last = selective_scan_cpu(*args, delta_softplus=True, return_last_state=True)
    (out.square().sum() + last.sum()).backward()
    for t in [out, last] + [a.grad for a in args]:
        digest.update(t.detach().numpy().tobytes())

    torch.manual_seed(0)
    model = MambaLM(MambaConfig(d_model=32, n_layer=2, vocab_size=256, ssm_cfg={"d_state": 8})).eval()
    step = decode_cpu.FusedMamba(model)
    token = 10
    for _ in range(20):
        logits = np.asarray(step.step(token))
        digest.update(logits.tobytes())
        token = int(logits.argmax())

    dispatchers = [cpu_loops.scan_forward, cpu_loops.scan_backward, decode_cpu.fused_step]
    print(json.dumps({"digest": digest.hexdigest(),
                      "hits": sum(sum(f.stats.cache_hits.values()) for f in dispatchers),
                      "misses": sum(sum(f.stats.cache_misses.values()) for f in dispatchers)}))
""")


def run(cache_dir) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_compiled_and_cached_kernels_give_the_same_bits(tmp_path):
    compiled, loaded = run(tmp_path), run(tmp_path)
    assert compiled["misses"] > 0 and compiled["hits"] == 0, compiled  # the first process compiled ...
    assert loaded["hits"] > 0 and loaded["misses"] == 0, loaded  # ... the second loaded every kernel from the cache
    assert compiled["digest"] == loaded["digest"]
