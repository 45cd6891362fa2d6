"""The numba CPU backend against the float32 reference: values, last state, gradients, resumption, NaN."""

import itertools

import pytest
import torch

from robustbench_bytes.kernels import selective_scan
from robustbench_bytes.kernels.cpu import selective_scan_cpu
from robustbench_bytes.kernels.reference import selective_scan_ref
from support.scan_inputs import OPTIONS, assert_scan_close, option_sets, scan_inputs

SHAPES = list(itertools.product((1, 2), (4, 64), (1, 8, 16), (1, 7, 64, 300)))


def _options_for(i):
    # walk the 32 option subsets across the 48 shapes (with the all/none sets at both ends), so every
    # option is both on and off at every L and every n
    sets = option_sets()
    return sets[(i * 11) % len(sets)]


@pytest.mark.parametrize("case", range(len(SHAPES)), ids=lambda i: "b{}-d{}-n{}-L{}".format(*SHAPES[i]))
def test_forward_matches_reference_on_the_issue_grid(case):
    b, d, n, L = SHAPES[case]
    groups = (0, 1, 2)[case % 3]
    for options in (_options_for(case), OPTIONS):
        kw = scan_inputs(b, d, n, L, groups=groups, options=options, seed=case)
        ref_out, ref_last = selective_scan_ref(**kw, return_last_state=True)
        out, last = selective_scan_cpu(**kw, return_last_state=True)
        assert out.dtype == torch.float32 and last.dtype == torch.float32
        assert_scan_close(out, ref_out, 1e-5, f"out {options}")
        assert_scan_close(last, ref_last, 1e-5, f"last_state {options}")


@pytest.mark.parametrize("options", option_sets(), ids=lambda o: "+".join(o) or "plain")
def test_every_option_combination(options):
    kw = scan_inputs(2, 6, 5, 23, groups=2, options=options, seed=len(options))
    ref_out, ref_last = selective_scan_ref(**kw, return_last_state=True)
    out, last = selective_scan_cpu(**kw, return_last_state=True)
    assert_scan_close(out, ref_out, 1e-5)
    assert_scan_close(last, ref_last, 1e-5, "last_state")
    assert torch.equal(selective_scan_cpu(**kw), out)


def test_bfloat16_inputs_within_mamba_ssm_tolerance():
    kw = scan_inputs(2, 16, 8, 40, groups=1, seed=3, dtype=torch.bfloat16)
    out = selective_scan_cpu(**kw)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), selective_scan_ref(**kw).float(), rtol=3e-2, atol=5e-2)


def test_float64_inputs_are_computed_in_float64():
    kw = scan_inputs(1, 8, 4, 30, seed=4, dtype=torch.float64)
    out, last = selective_scan_cpu(**kw, return_last_state=True)
    assert out.dtype == torch.float64 and last.dtype == torch.float64
    assert_scan_close(out, selective_scan_ref(**kw), 1e-5)


def test_auto_backend_on_cpu_tensors_is_the_cpu_kernel():
    kw = scan_inputs(1, 4, 3, 9, seed=5)
    kw["u"].requires_grad_()
    out = selective_scan(**kw)
    assert type(out.grad_fn).__name__.startswith("_SelectiveScanFn")
    assert torch.equal(out.detach(), selective_scan(**kw, backend="cpu").detach())


@pytest.mark.parametrize("scan", [selective_scan_cpu, selective_scan_ref], ids=["cpu", "reference"])
def test_resume_at_every_split_point(scan):
    """Exact (bitwise) for the cpu kernel; the reference's torch reductions may round differently on
    sliced (strided) inputs, so it is held to fp32 rounding."""
    kw = scan_inputs(2, 8, 4, 13, groups=2, seed=6)
    full, full_last = scan(**kw, return_last_state=True)
    for k in range(kw["u"].shape[-1] + 1):
        head = {key: (v[..., :k] if key in ("u", "delta", "z", "B", "C") else v) for key, v in kw.items()}
        tail = {key: (v[..., k:] if key in ("u", "delta", "z", "B", "C") else v) for key, v in kw.items()}
        out1, mid = scan(**head, return_last_state=True)
        tail["initial_state"] = mid
        out2, last = scan(**tail, return_last_state=True)
        if scan is selective_scan_cpu:
            assert torch.equal(torch.cat([out1, out2], dim=-1), full), k
            assert torch.equal(last, full_last), k
        else:
            assert_scan_close(torch.cat([out1, out2], dim=-1), full, 1e-6, f"out at {k}")
            assert_scan_close(last, full_last, 1e-6, f"last_state at {k}")


def test_resume_across_forward_tiles_and_with_gradients():
    # splits inside and at the edge of the forward's 64-step tiles, and the state carried with autograd on
    kw = scan_inputs(1, 20, 4, 150, groups=1, seed=12)
    full, full_last = selective_scan_cpu(**kw, return_last_state=True)
    for k in (1, 63, 64, 65, 149):
        head = {key: (v[..., :k] if key in ("u", "delta", "z", "B", "C") else v) for key, v in kw.items()}
        tail = {key: (v[..., k:] if key in ("u", "delta", "z", "B", "C") else v) for key, v in kw.items()}
        head["u"] = head["u"].clone().requires_grad_()
        out1, mid = selective_scan_cpu(**head, return_last_state=True)
        out2, last = selective_scan_cpu(**dict(tail, initial_state=mid), return_last_state=True)
        assert torch.equal(torch.cat([out1, out2], dim=-1).detach(), full), k
        assert torch.equal(last.detach(), full_last), k
        (out2.sum() + last.sum()).backward()  # flows through the carried state into the first chunk
        assert head["u"].grad is not None and head["u"].grad.abs().sum() > 0


def test_double_backward_is_refused_clearly():
    kw = scan_inputs(1, 4, 2, 5, seed=13, dtype=torch.float64)
    u = kw.pop("u").requires_grad_()
    out = selective_scan_cpu(u, **kw)
    (grad_u,) = torch.autograd.grad(out.pow(2).sum(), u, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        grad_u.sum().backward()


def test_empty_sequence_returns_the_initial_state():
    kw = scan_inputs(1, 4, 3, 0, seed=7)
    out, last = selective_scan_cpu(**kw, return_last_state=True)
    assert out.shape == (1, 4, 0)
    assert torch.equal(last, kw["initial_state"])


def _grad_inputs(kw):
    return [k for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state")
            if kw[k] is not None]


@pytest.mark.parametrize("groups,options,every", [
    (2, OPTIONS, 2),
    (0, ("delta_softplus",), 3),
    (1, ("D", "initial_state"), 100),
])
def test_gradcheck_float64(groups, options, every):
    kw = scan_inputs(2, 4, 2, 7, groups=groups, options=options, seed=8, dtype=torch.float64)
    names = _grad_inputs(kw)

    def fn(*tensors):
        args = dict(kw, **dict(zip(names, tensors)))
        out, last = selective_scan_cpu(**args, return_last_state=True, checkpoint_every=every)
        return out, last

    tensors = [kw[k].clone().requires_grad_() for k in names]
    assert torch.autograd.gradcheck(fn, tensors, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("every", [1, 5, None])
def test_gradients_match_reference_autograd(every):
    kw = scan_inputs(2, 16, 8, 45, groups=2, seed=9)
    names = _grad_inputs(kw)
    weight = torch.randn(2, 16, 45, generator=torch.Generator().manual_seed(1))
    grads = []
    for scan in (selective_scan_ref, selective_scan_cpu):
        leaves = {k: kw[k].clone().requires_grad_() for k in names}
        extra = {} if scan is selective_scan_ref else {"checkpoint_every": every}
        out, last = scan(**dict(kw, **leaves), return_last_state=True, **extra)
        ((out * weight).sum() + last.pow(2).sum()).backward()
        grads.append({k: leaves[k].grad for k in names})
    for k in names:
        assert_scan_close(grads[1][k], grads[0][k], 2e-5, f"grad {k}")


def test_nan_input_comes_out_as_nan():
    kw = scan_inputs(1, 4, 3, 10, seed=10)
    kw["u"][0, 1, 4] = float("nan")
    kw["delta"][0, 2, 6] = float("nan")
    out, last = selective_scan_cpu(**kw, return_last_state=True)
    assert torch.isnan(out[0, 1, 4:]).all() and torch.isnan(out[0, 2, 6:]).all()
    assert torch.isnan(last[0, 1]).all() and torch.isnan(last[0, 2]).all()
    assert torch.isfinite(out[0, 0]).all() and torch.isfinite(out[0, 1, :4]).all()


@pytest.mark.parametrize("bad", ["delta", "A", "B", "D", "initial_state"])
def test_wrong_shapes_raise_one_clear_error(bad):
    kw = scan_inputs(1, 4, 3, 5, groups=2, seed=11)
    kw[bad] = kw[bad][..., :-1]
    with pytest.raises(ValueError, match=bad):
        selective_scan_cpu(**kw)
