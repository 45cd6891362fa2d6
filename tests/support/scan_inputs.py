"""Random (never zero) selective-scan inputs and a scale-aware closeness check, for tests (and benches) of any
scan backend."""

import torch

OPTIONS = ("D", "z", "delta_bias", "delta_softplus", "initial_state")


def scan_inputs(b, d, n, L, groups=0, options=OPTIONS, seed=0, dtype=torch.float32):
    """Keyword arguments for selective_scan. groups=0: B, C of shape (b, n, L); else (b, groups, n, L).

    delta is positive when softplus is off (it is a step size); A is negative (a decay), as in Mamba."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    def rand(*shape):
        return torch.rand(*shape, generator=gen)

    softplus = "delta_softplus" in options
    bc_shape = (b, n, L) if groups == 0 else (b, groups, n, L)
    kw = dict(
        u=randn(b, d, L),
        delta=randn(b, d, L) * 0.7 - 0.5 if softplus else rand(b, d, L) * 0.4 + 0.02,
        A=-(rand(d, n) * 2 + 0.05),
        B=randn(*bc_shape),
        C=randn(*bc_shape),
        D=randn(d) if "D" in options else None,
        z=randn(b, d, L) if "z" in options else None,
        delta_bias=rand(d) * 0.2 + 0.01 if "delta_bias" in options else None,
        delta_softplus=softplus,
        initial_state=randn(b, d, n) if "initial_state" in options else None,
    )
    return {k: (v.to(dtype) if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}


def option_sets():
    """Every subset of OPTIONS, as tuples."""
    return [tuple(o for i, o in enumerate(OPTIONS) if mask >> i & 1) for mask in range(2 ** len(OPTIONS))]


def assert_scan_close(actual, expected, rtol, what="out"):
    """Element-wise |a - e| <= rtol * (|e| + max|e|): relative error measured against the output's scale,
    so that values near zero (after cancellation in <C, h>) do not need an absolute error of 0."""
    actual = actual.double()
    expected = expected.double()
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = expected.abs().max().clamp_min(1e-30)
    err = (actual - expected).abs()
    bound = rtol * (expected.abs() + scale)
    worst = (err / (expected.abs() + scale)).max().item() if err.numel() else 0.0
    assert bool((err <= bound).all()), f"{what}: relative error {worst:.3g} > {rtol:.3g}"
