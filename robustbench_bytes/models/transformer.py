"""A small GPT-style decoder: learned positions, pre-LayerNorm blocks, causal self-attention.

The zoo's Transformer baseline. Saved through checkpoint.save_pretrained with
`GPTConfig.to_dict()` as config.json (it carries "architecture": "transformer").
It sees at most `block_size` tokens at once; scoring feeds longer documents in rolling windows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHITECTURE = "transformer"


@dataclass
class GPTConfig:
    vocab_size: int = 256
    block_size: int = 512
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 256
    mlp_ratio: int = 4
    dropout: float = 0.0
    bias: bool = True
    tie_embeddings: bool = True
    layer_norm_eps: float = 1e-5

    REQUIRED = ("vocab_size", "block_size", "n_layer", "n_head", "d_model")

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not a multiple of n_head={self.n_head}")

    @classmethod
    def from_dict(cls, config: dict) -> "GPTConfig":
        """Builds a config from config.json's dict; unknown keys (architecture, tokenizer, ...) are ignored.
        Raises KeyError naming the first required field that is missing."""
        for name in cls.REQUIRED:
            if name not in config:
                raise KeyError(name)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in known})

    def to_dict(self) -> dict:
        return {"architecture": ARCHITECTURE, **asdict(self)}


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, L, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (t.view(b, L, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, L, d))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        hidden = config.mlp_ratio * config.d_model
        self.fc = nn.Linear(config.d_model, hidden, bias=config.bias)
        self.proj = nn.Linear(hidden, config.d_model, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)
        self.mlp = MLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm1(x)))
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """forward(ids (b, L) long, L <= block_size) -> logits (b, L, vocab_size) float32."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position = nn.Embedding(config.block_size, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        # GPT-2's scaled init: residual projections shrink with depth so the residual stream stays O(1)
        for name, p in self.named_parameters():
            if name.endswith("attn.proj.weight") or name.endswith("mlp.proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        if config.tie_embeddings:
            self.lm_head.weight = self.embedding.weight

    @staticmethod
    def _init_weights(module: nn.Module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    @property
    def block_size(self) -> int:
        return self.config.block_size

    def num_parameters(self) -> int:
        """Distinct parameters (a tied head counted once)."""
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        b, L = input_ids.shape
        if L > self.config.block_size:
            raise ValueError(f"sequence of {L} tokens exceeds block_size={self.config.block_size}")
        pos = torch.arange(L, device=input_ids.device)
        x = self.dropout(self.embedding(input_ids) + self.position(pos))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm_f(x)).float()

    def load_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Loads a saved state dict strictly; a tied head may be absent from the file.
        Raises ValueError naming the first missing/unexpected key or wrong shape."""
        own = self.state_dict()
        state_dict = dict(state_dict)
        if self.config.tie_embeddings and "lm_head.weight" not in state_dict and "embedding.weight" in state_dict:
            state_dict["lm_head.weight"] = state_dict["embedding.weight"]
        for key in own:
            if key not in state_dict:
                raise ValueError(f"missing key {key!r} (expected shape {tuple(own[key].shape)})")
        for key, tensor in state_dict.items():
            if key not in own:
                raise ValueError(f"unexpected key {key!r}")
            if tuple(tensor.shape) != tuple(own[key].shape):
                raise ValueError(f"key {key!r}: shape {tuple(tensor.shape)} in the file, "
                                 f"model expects {tuple(own[key].shape)}")
        self.load_state_dict(state_dict, strict=True)
        if self.config.tie_embeddings:
            self.lm_head.weight = self.embedding.weight
