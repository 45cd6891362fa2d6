"""MambaLM against transformers' MambaForCausalLM, and its three modes against each other."""

import math

import pytest
import torch
import torch.nn.functional as F

from support.mamba_checkpoints import (MAMBA130M_LIKE, MAMBABYTE_LIKE, ODD_WIDTH, hf_mamba, random_state_dict,  # noqa: E402
                           write_mamba_ssm_checkpoint)

from robustbench_bytes.models.architectures import load_network  # noqa: E402
from robustbench_bytes.models.mamba import MambaConfig, MambaLM  # noqa: E402

CONFIGS = {"mambabyte_layernorm_untied": MAMBABYTE_LIKE, "mamba130m_rmsnorm_tied": MAMBA130M_LIKE,
           "odd_width_d40": ODD_WIDTH}


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def nll(logits, ids):
    """Summed NLL of ids[:, 1:] given logits[:, :-1] over the full (padded) vocabulary."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                           reduction="sum").item()


@pytest.fixture(scope="module", params=list(CONFIGS))
def loaded(request, tmp_path_factory):
    config = CONFIGS[request.param]
    state = random_state_dict(config, seed=len(request.param))
    directory = write_mamba_ssm_checkpoint(tmp_path_factory.mktemp(request.param), config, state)
    model, _ = load_network(directory)
    model.scan_backend = "reference"
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, config["vocab_size"], (2, 41), generator=generator)
    with torch.inference_mode():
        whole, _ = model(ids)
    return config, state, model, ids, whole


def test_logits_match_transformers(loaded):
    config, state, model, ids, whole = loaded
    oracle = hf_mamba(config, state)
    with torch.inference_mode():
        expected = oracle(ids).logits.float()
    assert whole.shape == (2, ids.shape[1], MambaConfig.from_dict(config).padded_vocab_size)
    assert whole.dtype == torch.float32
    assert rel_err(whole, expected) <= 1e-4


@pytest.mark.parametrize("chunk", [1, 3, 16, 64])
def test_chunks_with_carried_state_match_whole(loaded, chunk):
    _, _, model, ids, whole = loaded
    state, parts = None, []
    with torch.inference_mode():
        for start in range(0, ids.shape[1], chunk):
            logits, state = model(ids[:, start:start + chunk], state)
            parts.append(logits)
    chunked = torch.cat(parts, dim=1)
    assert rel_err(chunked, whole) <= 1e-5
    assert math.isclose(nll(chunked, ids), nll(whole, ids), rel_tol=1e-6)


def test_step_by_step_matches_whole(loaded):
    _, _, model, ids, whole = loaded
    with torch.inference_mode():
        state = model.init_state(ids.shape[0])
        steps = []
        for t in range(ids.shape[1]):
            logits, state = model.step(ids[:, t], state)
            steps.append(logits)
    stepped = torch.stack(steps, dim=1)
    assert rel_err(stepped, whole) <= 1e-5
    assert math.isclose(nll(stepped, ids), nll(whole, ids), rel_tol=1e-6)


def test_decoding_resumes_from_a_chunk_state(loaded):
    _, _, model, ids, whole = loaded
    with torch.inference_mode():
        _, state = model(ids[:, :30])
        steps = []
        for t in range(30, ids.shape[1]):
            logits, state = model.step(ids[:, t], state)
            steps.append(logits)
    assert rel_err(torch.stack(steps, dim=1), whole[:, 30:]) <= 1e-5


def test_batch_rows_are_independent(loaded):
    _, _, model, ids, whole = loaded
    with torch.inference_mode():
        single, _ = model(ids[1:])
    assert rel_err(single, whole[1:]) <= 1e-5


def test_config_fields_and_padding():
    cfg = MambaConfig.from_dict(MAMBA130M_LIKE)
    assert (cfg.padded_vocab_size, cfg.d_inner, cfg.dt_rank, cfg.d_state, cfg.d_conv) == (50280, 64, 2, 16, 4)
    assert MambaConfig.from_dict(ODD_WIDTH).dt_rank == 3
    assert MambaConfig.from_dict(cfg.to_dict()) == cfg
    model = MambaLM(cfg)
    assert model.lm_head.weight is model.backbone.embedding.weight
    assert MambaLM(MambaConfig.from_dict(MAMBABYTE_LIKE)).lm_head.weight is not None
    with pytest.raises(ValueError, match="Mamba2"):
        MambaConfig.from_dict({**MAMBA130M_LIKE, "ssm_cfg": {"layer": "Mamba2"}})
    with pytest.raises(KeyError, match="n_layer"):
        MambaConfig.from_dict({"d_model": 8, "vocab_size": 256})


def test_mamba_ssm_initialisation():
    torch.manual_seed(0)
    cfg = MambaConfig.from_dict({**MAMBABYTE_LIKE, "ssm_cfg": {"dt_min": 0.002, "dt_max": 0.05}})
    mixer = MambaLM(cfg).backbone.layers[0].mixer
    assert torch.allclose(-torch.exp(mixer.A_log[3]), -torch.arange(1.0, 17.0))
    assert torch.equal(mixer.D, torch.ones(cfg.d_inner))
    dt = F.softplus(mixer.dt_proj.bias)
    assert dt.min() >= 0.002 * (1 - 1e-4) and dt.max() <= 0.05 * (1 + 1e-4)


def test_random_init_learns_a_repeated_pattern():
    torch.manual_seed(0)
    model = MambaLM(MambaConfig(d_model=16, n_layer=1, vocab_size=256, rms_norm=False, tie_embeddings=False))
    model.scan_backend = "reference"
    ids = torch.tensor([list(b"abcab" * 6)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        logits, _ = model(ids[:, :-1])
        loss = F.cross_entropy(logits[0], ids[0, 1:])
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_conv_state_does_not_keep_the_chunk_alive(loaded):
    _, _, model, ids, _ = loaded
    with torch.inference_mode():
        _, state = model(ids)
    for conv in state.conv:
        assert conv.is_contiguous() and conv.untyped_storage().nbytes() == conv.numel() * 4


def test_state_select_keeps_rows(loaded):
    _, _, model, ids, whole = loaded
    with torch.inference_mode():
        _, state = model(ids[:, :20])
        logits, _ = model(ids[1:, 20:], state.select(slice(1, 2)))
    assert rel_err(logits, whole[1:, 20:]) <= 1e-5


def test_bf16_autocast_keeps_state_in_float32():
    """What the GPU path does (bf16 autocast), exercised on the CPU: fp32 state and logits, bf16-level error."""
    torch.manual_seed(0)
    model = MambaLM(MambaConfig.from_dict(MAMBABYTE_LIKE)).eval()
    model.scan_backend = "reference"
    ids = torch.randint(0, 256, (2, 30))
    with torch.inference_mode():
        exact, _ = model(ids)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            first, state = model(ids[:, :12])
            second, state = model(ids[:, 12:], state)
            stepped, _ = model.step(ids[:, 0], state)
    assert first.dtype == stepped.dtype == torch.float32
    assert all(t.dtype == torch.float32 for t in state.ssm + state.conv)
    assert rel_err(torch.cat([first, second], dim=1), exact) < 3e-2


def sequential_mamba_logits(state: dict, config: dict, ids: torch.Tensor) -> torch.Tensor:
    """A per-token float64 Mamba written from the equations (no kernel, no conv layer), for one sequence."""
    cfg = MambaConfig.from_dict(config)
    W = {k: v.double() for k, v in state.items()}
    head = W.get("lm_head.weight", W["backbone.embedding.weight"])

    def norm(x, prefix):
        if cfg.rms_norm:
            return x / torch.sqrt((x * x).mean() + cfg.norm_epsilon) * W[prefix + ".weight"]
        mu, var = x.mean(), ((x - x.mean()) ** 2).mean()
        return (x - mu) / torch.sqrt(var + cfg.norm_epsilon) * W[prefix + ".weight"] + W[prefix + ".bias"]

    layers = [f"backbone.layers.{i}." for i in range(cfg.n_layer)]
    history = {p: [torch.zeros(cfg.d_inner, dtype=torch.float64)] * (cfg.d_conv - 1) for p in layers}
    h = {p: torch.zeros(cfg.d_inner, cfg.d_state, dtype=torch.float64) for p in layers}
    out = []
    for token in ids.tolist():
        residual = W["backbone.embedding.weight"][token]
        for p in layers:
            m = p + "mixer."
            xz = W[m + "in_proj.weight"] @ norm(residual, p + "norm")
            x, z = xz[:cfg.d_inner], xz[cfg.d_inner:]
            window = torch.stack(history[p] + [x], dim=-1)  # (d_inner, d_conv), oldest first
            history[p] = history[p][1:] + [x]
            x = F.silu((window * W[m + "conv1d.weight"][:, 0]).sum(-1) + W[m + "conv1d.bias"])
            dbc = W[m + "x_proj.weight"] @ x
            dt, B, C = dbc[:cfg.dt_rank], dbc[cfg.dt_rank:cfg.dt_rank + cfg.d_state], dbc[cfg.dt_rank + cfg.d_state:]
            delta = F.softplus(W[m + "dt_proj.weight"] @ dt + W[m + "dt_proj.bias"])
            A = -torch.exp(W[m + "A_log"])
            h[p] = torch.exp(delta[:, None] * A) * h[p] + (delta * x)[:, None] * B[None, :]
            y = (h[p] @ C + W[m + "D"] * x) * F.silu(z)
            residual = residual + W[m + "out_proj.weight"] @ y
        out.append(head @ norm(residual, "backbone.norm_f"))
    return torch.stack(out)


def test_logits_match_an_independent_sequential_implementation(loaded):
    config, state, _, ids, whole = loaded
    expected = sequential_mamba_logits(state, config, ids[0, :12])
    assert rel_err(whole[0, :12].double(), expected) <= 1e-4


def test_empty_chunk_keeps_the_state(loaded):
    _, _, model, ids, whole = loaded
    with torch.inference_mode():
        _, state = model(ids[:, :10])
        empty, same = model(ids[:, :0], state)
        rest, _ = model(ids[:, 10:], same)
    assert empty.shape == (2, 0, whole.shape[-1])
    assert rel_err(rest, whole[:, 10:]) <= 1e-5
