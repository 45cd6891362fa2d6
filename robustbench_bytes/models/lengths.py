"""What a model says about lengths: the training length it declares (config.json's "robustbench" block), and whether
its position scheme allows windows longer than its configured context (rotary embeddings)."""

from __future__ import annotations

def declared_train_length(model) -> dict:
    """{"bytes": N or None, "tokens": M or None}: the training sequence length a model declares in the
    "robustbench" block of its config.json (train_length_bytes / train_length_tokens; for older zoo
    models, the training config's seq_len in tokens). For a byte model tokens and bytes are the same."""
    block = _robustbench_block(model)
    n_bytes, n_tokens = _positive_int(block.get("train_length_bytes")), _positive_int(block.get("train_length_tokens"))
    if n_tokens is None:
        train_config = block.get("train_config") if isinstance(block.get("train_config"), dict) else {}
        n_tokens = _positive_int(train_config.get("seq_len"))
    if getattr(model, "level", None) == "byte":
        n_bytes = n_bytes or n_tokens
        n_tokens = n_tokens or n_bytes
    return {"bytes": n_bytes, "tokens": n_tokens}


def _robustbench_block(model) -> dict:
    config = (getattr(model, "info", None) or {}).get("config")
    if isinstance(config, dict) and isinstance(config.get("robustbench"), dict):
        return config["robustbench"]
    hf_config = getattr(getattr(model, "module", None), "config", None)  # transformers keeps unknown keys
    block = getattr(hf_config, "robustbench", None)
    return block if isinstance(block, dict) else {}


def _positive_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


ROTARY_CONFIG_KEYS = ("rope_theta", "rope_parameters", "rope_scaling", "rotary_dim", "rotary_pct")


def extends_past_window(model) -> bool:
    """Whether the model's positions are rotary (RoPE), so windows longer than its configured context are
    well defined (how well it does there is what the length benchmark measures). Learned absolute
    positions (GPT-2, the zoo's GPT) cannot go past their table."""
    config = getattr(getattr(model, "module", None), "config", None)
    if config is None or isinstance(config, dict):
        return False
    return any(getattr(config, key, None) is not None for key in ROTARY_CONFIG_KEYS)
