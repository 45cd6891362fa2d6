"""Window plans for windowed models: which tokens each window is fed and which of its predictions are scored.

As lm-evaluation-harness's `loglikelihood_rolling`: by default disjoint windows of `max_length` tokens, the first
predicting its tokens from the prefix, each later one conditioning on the single token before it (`context=1`);
with `context` / `stride`, later windows predict `stride` new tokens after at least `context` tokens of context.
Every window is fed the longest input that fits (`max_length` tokens), so a short final window sees more context.
"""

from __future__ import annotations

from dataclasses import dataclass

from robustbench_bytes.errors import BadInput


@dataclass(frozen=True)
class Window:
    """Feed seq[start:end] (seq = prefix + tokens); score the last `scored` predictions, i.e. the targets
    seq[end - scored + 1 : end + 1]."""

    start: int
    end: int
    scored: int


def plan_windows(n_tokens: int, max_length: int, prefix_len: int = 1, context: int | None = None,
                 stride: int | None = None) -> list[Window]:
    """Windows covering the n_tokens targets that follow a prefix of prefix_len tokens, each target scored once.

    context: tokens a later window conditions on before its first scored target (default 1, disjoint windows);
    stride: targets scored per later window (default max_length - context + 1).
    """
    context, stride = window_options(max_length, context, stride)
    if prefix_len < 1:
        raise ValueError("prefix_len must be at least 1: the first token needs something to condition on")
    windows = []
    first_target, last = prefix_len, prefix_len + n_tokens  # targets occupy seq[prefix_len : last]
    target = first_target
    while target < last:
        if target == first_target:
            take = min(last - target, max(1, max_length - prefix_len + 1))
        else:
            take = min(last - target, stride)
        end = target + take - 1  # input seq[start:end] predicts seq[start+1 : end+1]
        start = max(0, end - max_length)
        windows.append(Window(start, end, take))
        target += take
    return windows


def window_options(max_length: int, context: int | None, stride: int | None) -> tuple[int, int]:
    """Validated (context, stride) for windows of max_length tokens."""
    if max_length < 1:
        raise BadInput(f"max_length={max_length}: expected a positive number of tokens")
    if context is None and stride is None:
        context = 1
    if context is None:
        context = max_length - stride + 1
    if stride is None:
        stride = max_length - context + 1
    if context < 1:
        raise BadInput(f"context={context}: expected at least 1 token")
    if stride < 1:
        raise BadInput(f"stride={stride}: expected at least 1 token")
    if context + stride - 1 > max_length:
        raise BadInput(f"context={context} with stride={stride} needs windows of {context + stride - 1} "
                       f"tokens; the model takes at most {max_length}")
    return context, stride
