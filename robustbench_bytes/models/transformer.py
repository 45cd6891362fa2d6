"""A small GPT-style decoder: learned positions, pre-LayerNorm blocks, causal self-attention.

The zoo's Transformer baseline. Saved through checkpoint.save_pretrained with
`GPTConfig.to_dict()` as config.json (it carries "architecture": "transformer").
It sees at most `block_size` tokens at once; scoring feeds longer documents in rolling windows.
Decoding uses a key/value cache (`new_cache`, `forward_cached`): the same logits as forward() on the whole
prefix, one new token at a time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from robustbench_bytes.models.base import check_config_fields
from robustbench_bytes.models.layers import Embedding, Linear

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
        check_config_fields(asdict(self), ints=("vocab_size", "block_size", "n_layer", "n_head", "d_model", "mlp_ratio"),
                            bools=("bias", "tie_embeddings"), numbers=("layer_norm_eps",))
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout = {self.dropout!r}; expected a number in [0, 1)")
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


@dataclass
class KVCache:
    """Per-layer keys and values (b, n_head, block_size, head_dim) of the first `length` positions."""

    k: list
    v: list
    length: int = 0


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.qkv = Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = Linear(config.d_model, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, L, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (t.view(b, L, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, L, d))

    def forward_cached(self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, start: int):
        """x (b, L, d) at positions start..start+L-1; writes their keys and values into the caches and attends
        over positions 0..start+L-1."""
        b, L, d = x.shape
        end = start + L
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (t.view(b, L, self.n_head, d // self.n_head).transpose(1, 2) for t in (q, k, v))
        k_cache[:, :, start:end] = k
        v_cache[:, :, start:end] = v
        mask = None
        if L > 1:  # query i (position start+i) sees keys 0..start+i
            mask = torch.arange(end, device=x.device)[None, :] <= torch.arange(start, end, device=x.device)[:, None]
        y = F.scaled_dot_product_attention(q, k_cache[:, :, :end], v_cache[:, :, :end], attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(b, L, d))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        hidden = config.mlp_ratio * config.d_model
        self.fc = Linear(config.d_model, hidden, bias=config.bias)
        self.proj = Linear(hidden, config.d_model, bias=config.bias)
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

    def forward_cached(self, x, k_cache, v_cache, start: int):
        x = x + self.dropout(self.attn.forward_cached(self.norm1(x), k_cache, v_cache, start))
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """forward(ids (b, L) long, L <= block_size) -> logits (b, L, vocab_size) float32."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.embedding = Embedding(config.vocab_size, config.d_model)
        self.position = Embedding(config.block_size, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)
        self.lm_head = Linear(config.d_model, config.vocab_size, bias=False)
        if not self.lm_head.weight.is_meta:  # on the meta device a checkpoint is about to be assigned
            self._init_all()
        if config.tie_embeddings:
            self.lm_head.weight = self.embedding.weight

    @torch.no_grad()
    def _init_all(self):
        self.apply(self._init_weights)
        # GPT-2's scaled init: residual projections shrink with depth so the residual stream stays O(1)
        for name, p in self.named_parameters():
            if name.endswith("attn.proj.weight") or name.endswith("mlp.proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

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

    def new_cache(self, batch: int = 1, device=None) -> KVCache:
        """An empty key/value cache for forward_cached, sized for block_size positions."""
        c = self.config
        device = device if device is not None else self.lm_head.weight.device
        dtype = self.lm_head.weight.dtype
        shape = (batch, c.n_head, c.block_size, c.d_model // c.n_head)
        return KVCache([torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.n_layer)],
                       [torch.zeros(shape, device=device, dtype=dtype) for _ in range(c.n_layer)])

    def forward_cached(self, input_ids: torch.Tensor, cache: KVCache):
        """input_ids (b, L) continuing the cache's `length` tokens -> (logits (b, L, vocab_size) float32, cache).
        The logits equal forward() on the whole prefix (up to rounding); the cache is updated in place.
        Raises ValueError past block_size (start a new cache from the last tokens)."""
        b, L = input_ids.shape
        start = cache.length
        if start + L > self.config.block_size:
            raise ValueError(f"{start} cached + {L} new tokens exceed block_size={self.config.block_size}")
        pos = torch.arange(start, start + L, device=input_ids.device)
        x = self.dropout(self.embedding(input_ids) + self.position(pos))
        for i, block in enumerate(self.blocks):
            x = block.forward_cached(x, cache.k[i], cache.v[i], start)
        cache.length = start + L
        return self.lm_head(self.norm_f(x)).float(), cache

    def make_decoder(self, vocab_size: int, device):
        """Its decoder for generation: the key/value cache (generate_decoders.gpt_decoder)."""
        from robustbench_bytes.generation.decoders import gpt_decoder

        return gpt_decoder(self, vocab_size, device)

    def load_weights(self, state_dict: dict[str, torch.Tensor], assign: bool = False) -> None:
        """Loads a saved state dict strictly; a tied head may be absent from the file.
        assign: the parameters become the given tensors (no copy; for a model built on the meta device).
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
        self.load_state_dict(state_dict, strict=True, assign=assign)
        if self.config.tie_embeddings:
            self.lm_head.weight = self.embedding.weight
