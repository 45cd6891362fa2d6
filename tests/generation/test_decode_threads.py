"""Decoding runs on the threads asked for, whatever numba's parallel scan did before: numba's thread pool, when it
starts, resets the OpenMP thread count it shares with torch. Each check runs in a fresh process (thread counts and
numba's pool are per process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from robustbench_bytes.errors import BadInput
from robustbench_bytes.generation import check_options

PRELUDE = """
import json, torch, numba
from robustbench_bytes.generation import generate
from robustbench_bytes.generation.decoders import make_decoder
from robustbench_bytes.kernels import selective_scan
from robustbench_bytes.models.base import LoadedModel
from robustbench_bytes.models.mamba import MambaConfig, MambaLM
from robustbench_bytes.models.tokenization import ByteTokenizer

def scan():
    u = torch.randn(1, 64, 32)
    selective_scan(u, torch.rand(1, 64, 32), -torch.rand(64, 8), torch.randn(1, 8, 32), torch.randn(1, 8, 32),
                   backend="cpu")

def model():
    torch.manual_seed(0)
    module = MambaLM(MambaConfig(d_model=32, n_layer=2, vocab_size=256, ssm_cfg={"d_state": 8})).eval()
    return LoadedModel(name="tiny", level="byte", architecture="mamba", module=module, tokenizer=ByteTokenizer(),
                       device=torch.device("cpu"), checkpoint_sha256="", source="tiny", parameters=0)

def counts():
    return [torch.get_num_threads(), numba.get_num_threads()]
"""


def run(body: str) -> dict:
    code = "import torch\n" + body.split("\n---\n")[0] + PRELUDE + body.split("\n---\n")[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_torch_threads_set_before_import_hold_after_a_numba_prefill_scan():
    out = run("""torch.set_num_threads(1)
---
dec = make_decoder(model())
with torch.inference_mode():
    dec.prefill(list(b"a prompt long enough for a chunk"))
    dec.step(32)
scan()
print(json.dumps({"after": counts()}))""")
    assert out["after"] == [1, 1]


@pytest.mark.parametrize("threads", [1, 2])
def test_generate_runs_on_the_threads_asked_for_after_a_scan_reset_them(threads):
    out = run(f"""
---
torch.set_num_threads(1)
scan()  # numba's pool is running; counts are whatever it left
g = generate(model(), "Some prompt", max_bytes=8, threads={threads})
during = counts()
scan()
print(json.dumps({{"during": during, "after": counts(), "recorded": g.to_json()["threads"]}}))""")
    assert out["during"] == [threads, threads]
    assert out["after"] == [threads, threads]
    assert out["recorded"] == threads


def test_generate_by_default_runs_on_the_cores_the_process_may_use():
    out = run("""
---
import os
torch.set_num_threads(1)
g = generate(model(), "x", max_bytes=2)
print(json.dumps({"torch": torch.get_num_threads(), "cores": len(os.sched_getaffinity(0)),
                  "recorded": g.to_json()["threads"]}))""")
    assert out["torch"] == out["cores"] == out["recorded"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_thread_count_is_refused_naming_the_parameter(bad):
    with pytest.raises(BadInput, match=r"^threads="):
        check_options(threads=bad)
