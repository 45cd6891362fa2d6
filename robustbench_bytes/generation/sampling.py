"""Choosing the next token from a row of logits (greedy, or temperature / top-k sampling) and a token's rank."""

from __future__ import annotations

import math

import torch

from robustbench_bytes.errors import RunFailed


class NonFiniteLogits(RunFailed):
    """The model's logits hold NaN or infinity where a token is chosen: nothing can be generated from them."""


def choose(logits: torch.Tensor, temperature: float = 0.0, top_k: int | None = None,
           generator: torch.Generator | None = None) -> int:
    """The next token from logits (V,). Temperature 0: the argmax, the lowest index among tied maxima (what
    rank() counts as rank 0). Otherwise a draw from softmax(logits / temperature) restricted to the top_k
    largest logits, from `generator` (so a seed reproduces the draw)."""
    if temperature == 0:
        token = int(torch.argmax(logits))  # a NaN is the argmax where there is one
        if not math.isfinite(float(logits[token])):
            raise NonFiniteLogits(f"the model's logits are not finite (the largest is {float(logits[token])}): its "
                                  "weights or state hold NaN or infinity; nothing can be generated")
        return token
    if torch.isnan(logits).any() or not torch.isfinite(logits).any():
        raise NonFiniteLogits("the model's logits are NaN or all infinite: its weights or state hold NaN or "
                              "infinity; nothing can be generated")
    scaled = logits.float().cpu() / temperature  # drawn on the CPU, where the generator lives
    if not torch.isfinite(scaled).all():  # a temperature so small that logits / T overflow float32: scale the
        shifted = logits.double().cpu()     # distances to the maximum, in float64 (the maximum stays at 0)
        scaled = (shifted - shifted.max()) / temperature
    if top_k is not None and top_k < scaled.numel():
        kth = torch.topk(scaled, top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def rank(logits: torch.Tensor, token: int) -> int:
    """How many tokens come before `token` in the greedy order: a strictly larger logit, or an equal logit at a
    lower index. Rank 0 is exactly choose(logits) at temperature 0."""
    value = logits[token]
    higher = int((logits > value).sum())
    tied_before = int((logits[:token] == value).sum())
    return higher + tied_before


def ranks(rows: torch.Tensor, tokens) -> list[int]:
    """rank(rows[i], tokens[i]) for every i at once (rows (m, V))."""
    t = torch.as_tensor(list(tokens), dtype=torch.long, device=rows.device)
    values = rows.gather(1, t[:, None])
    higher = (rows > values).sum(1)
    before = torch.arange(rows.shape[1], device=rows.device)[None, :] < t[:, None]
    return (higher + ((rows == values) & before).sum(1)).tolist()
