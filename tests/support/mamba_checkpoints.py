"""Random-weight mamba_ssm-format checkpoints and the transformers oracle, shared by the Mamba tests."""

import json
from pathlib import Path

import torch

from robustbench_bytes.models.mamba import MambaConfig, MambaLM

MAMBABYTE_LIKE = {"d_model": 32, "n_layer": 2, "vocab_size": 256, "ssm_cfg": {"expand": 2}, "rms_norm": False,
                  "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8,
                  "tie_embeddings": False}
MAMBA130M_LIKE = {"d_model": 32, "n_layer": 2, "vocab_size": 50277, "ssm_cfg": {}, "rms_norm": True,
                  "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8}
ODD_WIDTH = {"d_model": 40, "n_layer": 3, "vocab_size": 256, "ssm_cfg": {"d_state": 8, "d_conv": 3},
             "rms_norm": True, "tie_embeddings": False, "pad_vocab_size_multiple": 8}


def random_state_dict(config: dict, seed: int = 0) -> dict:
    """mamba_ssm-initialised weights, then every tensor perturbed so no parameter sits at a special value."""
    torch.manual_seed(seed)
    model = MambaLM(MambaConfig.from_dict(config))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.state_dict()


def write_mamba_ssm_checkpoint(directory: Path, config: dict, state: dict, fmt: str = "bin") -> Path:
    """config.json + pytorch_model.bin (torch.save of the plain state dict, as mamba_ssm does) or safetensors."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    if fmt == "bin":
        torch.save(dict(state), directory / "pytorch_model.bin")
    else:
        from safetensors.torch import save_file

        tensors = {k: v.clone().contiguous() for k, v in state.items()}
        if config.get("tie_embeddings", True):
            tensors.pop("lm_head.weight", None)
        save_file(tensors, str(directory / "model.safetensors"))
    return directory


def hf_mamba(config: dict, state: dict):
    """transformers' MambaForCausalLM holding the same weights. LayerNorm configs (which that class cannot
    express: it only has RMSNorm) get nn.LayerNorm swapped in for its norms, everything else is its own code."""
    from transformers import MambaConfig as HFConfig, MambaForCausalLM

    cfg = MambaConfig.from_dict(config)
    hf_cfg = HFConfig(hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layer, vocab_size=cfg.padded_vocab_size,
                      state_size=cfg.d_state, expand=cfg.ssm("expand"), conv_kernel=cfg.d_conv,
                      time_step_rank=cfg.dt_rank, use_bias=cfg.ssm("bias"), use_conv_bias=cfg.ssm("conv_bias"),
                      layer_norm_epsilon=cfg.norm_epsilon, residual_in_fp32=cfg.residual_in_fp32,
                      tie_word_embeddings=cfg.tie_embeddings, use_cache=False)
    model = MambaForCausalLM(hf_cfg)
    if not cfg.rms_norm:
        for layer in model.backbone.layers:
            layer.norm = torch.nn.LayerNorm(cfg.d_model, eps=cfg.norm_epsilon)
        model.backbone.norm_f = torch.nn.LayerNorm(cfg.d_model, eps=cfg.norm_epsilon)
    renamed = {k.replace("backbone.embedding.", "backbone.embeddings."): v for k, v in state.items()}
    result = model.load_state_dict(renamed, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys
    assert set(result.missing_keys) <= {"lm_head.weight"}, result.missing_keys
    if cfg.tie_embeddings:
        model.tie_weights()
    return model.eval()
