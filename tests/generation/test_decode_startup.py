"""`robustbench generate` reaches its first byte without building the model twice: a Mamba or a GPT built on the
meta device (for a checkpoint to be assigned) draws no random values, which would import torch._dynamo (seconds)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from robustbench_bytes.models.mamba import MambaConfig, MambaLM


@pytest.mark.parametrize("name", ["mambabyte-kjv-shakespeare", "gpt-bpe-kjv-shakespeare"])
def test_loading_a_zoo_model_does_not_import_torch_dynamo(name):
    code = ("import sys\nfrom robustbench_bytes.models import load_model\n"
            f"m = load_model({name!r}, 'cpu')\n"
            "print(sum(p.numel() for p in m.module.parameters()), 'torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    count, dynamo = done.stdout.split()
    assert int(count) > 0
    assert dynamo == "False"


def test_a_meta_build_has_every_parameter_and_a_real_build_is_still_initialised():
    cfg = MambaConfig(d_model=16, n_layer=2, vocab_size=256, ssm_cfg={"d_state": 4}, rms_norm=False,
                      tie_embeddings=False)
    with torch.device("meta"):
        meta = MambaLM(cfg)
    torch.manual_seed(0)
    real = MambaLM(cfg).requires_grad_(False)
    assert {k: tuple(v.shape) for k, v in meta.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in real.state_dict().items()}
    assert all(p.is_meta for p in meta.parameters())
    # mamba_ssm's initialisation on a real build: A_log = log(1..n) per channel, D = 1, N(0, 0.02) embedding,
    # uniform in-projection (not zeros, not ones)
    mixer = real.backbone.layers[0].mixer
    assert torch.allclose(mixer.A_log[3], torch.log(torch.arange(1, 5, dtype=torch.float32)))
    assert torch.equal(mixer.D, torch.ones(mixer.d_inner))
    assert 0.015 < float(real.backbone.embedding.weight.std()) < 0.025
    w = mixer.in_proj.weight
    assert float(w.abs().max()) <= 16 ** -0.5 + 1e-6 and float(w.std()) > 0.05


def test_a_gpt_meta_build_has_every_parameter_and_a_real_build_is_still_initialised():
    from robustbench_bytes.models.transformer import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=256, block_size=32, n_layer=8, n_head=2, d_model=64)
    with torch.device("meta"):
        meta = GPT(cfg)
    torch.manual_seed(0)
    real = GPT(cfg).requires_grad_(False)
    assert {k: tuple(v.shape) for k, v in meta.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in real.state_dict().items()}
    assert all(p.is_meta for p in meta.parameters())
    # GPT-2's initialisation: N(0, 0.02) weights, zero biases, residual projections N(0, 0.02 / sqrt(2 n_layer))
    assert 0.018 < float(real.embedding.weight.std()) < 0.022
    assert 0.018 < float(real.blocks[0].mlp.fc.weight.std()) < 0.022
    assert float(real.blocks[0].mlp.fc.bias.abs().max()) == 0.0
    assert 0.004 < float(real.blocks[0].attn.proj.weight.std()) < 0.0060  # 0.02 / 4 = 0.005
    assert real.lm_head.weight is real.embedding.weight
