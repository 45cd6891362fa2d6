"""Fast, differentiable CPU selective scan: fused numba loops, no (b, d, L, n) tensor.

Forward: each block of LANES channels of one batch row carries its (n, LANES) state through L steps;
extra memory is O(b*d*n) plus small per-thread tiles, independent of L.
Backward: the forward keeps the state at the start of every chunk of K = `checkpoint_every` steps
(b*d*n*ceil(L/K) floats, K ~ sqrt(L) by default); the backward walks chunks from last to first,
recomputes the chunk's states from its checkpoint into a per-thread (K+1, n, LANES) scratch, then runs
the reverse recurrence. Recomputing states backwards from the last state (h_{t-1} = (h_t - dt*B*u) /
exp(dt*A)) is avoided on purpose: it blows up when exp(dt*A) underflows.

Gradients for B and C, shared by all channels of a group, are accumulated into one buffer per parallel
slot and summed afterwards, so threads never write the same memory.
Inputs of any float dtype are computed in float32, except float64 (gradcheck), computed in float64.
"""

import math

import numba
import numpy as np
import torch
from torch.autograd.function import once_differentiable

from robustbench_bytes.kernels.cpu_loops import LANES, scan_backward, scan_forward


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _np(x: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    return x.detach().to(dtype).contiguous().numpy()


def _constants(npdt):
    return npdt.type(0.0), npdt.type(1.0)


def _dummy(ndim: int, dtype: torch.dtype) -> np.ndarray:
    return np.zeros((1,) * ndim, dtype=torch.empty(0, dtype=dtype).numpy().dtype)


def _grouped(BC: torch.Tensor) -> torch.Tensor:
    """(b, n, L) or (b, g, n, L) -> (b, g, L, n) so that the n values of one step are contiguous."""
    if BC.dim() == 3:
        BC = BC.unsqueeze(1)
    return BC.transpose(-1, -2)


def default_checkpoint_every(L: int) -> int:
    # sqrt(L) balances checkpoint memory (L/K states) against the per-thread scratch (K states)
    return max(32, math.isqrt(max(L, 1)) + 1)


def _check_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state):
    if u.dim() != 3:
        raise ValueError(f"selective_scan(cpu): u must be (b, d, L), got shape {tuple(u.shape)}")
    b, d, L = u.shape
    n = B.shape[-2] if B.dim() in (3, 4) else -1
    if tuple(delta.shape) != (b, d, L):
        raise ValueError(f"selective_scan(cpu): delta shape {tuple(delta.shape)}, expected {(b, d, L)}")
    if tuple(A.shape) != (d, n):
        raise ValueError(f"selective_scan(cpu): A shape {tuple(A.shape)}, expected (d, n) = {(d, n)} "
                         "(n from B)")
    for name, BC in (("B", B), ("C", C)):
        ok = (BC.dim() == 3 and tuple(BC.shape) == (b, n, L)) or (
            BC.dim() == 4 and BC.shape[0] == b and tuple(BC.shape[2:]) == (n, L)
            and BC.shape[1] > 0 and d % BC.shape[1] == 0)
        if not ok:
            raise ValueError(f"selective_scan(cpu): {name} shape {tuple(BC.shape)}, expected (b, n, L) = "
                             f"{(b, n, L)} or (b, g, n, L) with g dividing d={d}")
    if z is not None and tuple(z.shape) != (b, d, L):
        raise ValueError(f"selective_scan(cpu): z shape {tuple(z.shape)}, expected {(b, d, L)}")
    for name, v in (("D", D), ("delta_bias", delta_bias)):
        if v is not None and tuple(v.shape) != (d,):
            raise ValueError(f"selective_scan(cpu): {name} shape {tuple(v.shape)}, expected ({d},)")
    if initial_state is not None and tuple(initial_state.shape) != (b, d, n):
        raise ValueError(f"selective_scan(cpu): initial_state shape {tuple(initial_state.shape)}, "
                         f"expected {(b, d, n)}")


def _forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, K, save_ckpt):
    cdt = compute_dtype(u.dtype)
    b, d, L = u.shape
    n = A.shape[1]
    un = _np(u, cdt)
    out = np.empty_like(un)
    h_last = np.empty((b, d, n), dtype=un.dtype)
    n_chunks = max(1, -(-L // K))
    ckpt = np.empty((b, d, n_chunks, n), dtype=un.dtype) if save_ckpt else _dummy(4, cdt)
    if save_ckpt and L == 0:
        ckpt[:] = 0 if initial_state is None else _np(initial_state, cdt)[:, :, None, :]
    scan_forward(
        un, _np(delta, cdt), _np(A.t(), cdt), _np(_grouped(B), cdt), _np(_grouped(C), cdt),
        _np(D, cdt) if D is not None else _dummy(1, cdt),
        _np(z, cdt) if z is not None else _dummy(3, cdt),
        _np(delta_bias, cdt) if delta_bias is not None else _dummy(1, cdt),
        _np(initial_state, cdt) if initial_state is not None else _dummy(3, cdt),
        out, h_last, ckpt, K,
        D is not None, z is not None, delta_bias is not None, initial_state is not None,
        bool(delta_softplus), save_ckpt, *_constants(un.dtype), LANES)
    return torch.from_numpy(out), torch.from_numpy(h_last), torch.from_numpy(ckpt)


class _SelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, initial_state, delta_softplus, K):
        out, h_last, ckpt = _forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state,
                                     K, save_ckpt=True)
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, initial_state, ckpt)
        ctx.delta_softplus = bool(delta_softplus)
        ctx.K = K
        return out.to(u.dtype), h_last

    @staticmethod
    @once_differentiable
    def backward(ctx, gout, glast):
        u, delta, A, B, C, D, z, delta_bias, initial_state, ckpt = ctx.saved_tensors
        cdt = compute_dtype(u.dtype)
        b, d, L = u.shape
        n = A.shape[1]
        Bt = _np(_grouped(B), cdt)
        g = Bt.shape[1]
        n_slots = max(1, 2 * numba.get_num_threads())
        npdt = Bt.dtype
        gu = np.empty((b, d, L), dtype=npdt)
        gdelta = np.empty((b, d, L), dtype=npdt)
        gz = np.zeros((b, d, L), dtype=npdt) if z is not None else _dummy(3, cdt)
        gA_part = np.empty((b, d, n), dtype=npdt)
        gD_part = np.empty((b, d), dtype=npdt)
        gbias_part = np.empty((b, d), dtype=npdt)
        gh0 = np.empty((b, d, n), dtype=npdt)
        gB_part = np.zeros((n_slots, b, g, L, n), dtype=npdt)
        gC_part = np.zeros((n_slots, b, g, L, n), dtype=npdt)
        if gout is None:
            gout = torch.zeros(b, d, L, dtype=cdt)
        scan_backward(
            _np(u, cdt), _np(delta, cdt), _np(A.t(), cdt), Bt, _np(_grouped(C), cdt),
            _np(D, cdt) if D is not None else _dummy(1, cdt),
            _np(z, cdt) if z is not None else _dummy(3, cdt),
            _np(delta_bias, cdt) if delta_bias is not None else _dummy(1, cdt),
            ckpt.numpy(), ctx.K, _np(gout, cdt),
            _np(glast, cdt) if glast is not None else _dummy(3, cdt),
            D is not None, z is not None, delta_bias is not None, glast is not None,
            ctx.delta_softplus, n_slots, *_constants(npdt), LANES,
            gu, gdelta, gz, gA_part, gD_part, gbias_part, gh0, gB_part, gC_part)

        def back(arr, like):
            return torch.from_numpy(arr).to(like.dtype)

        def group_grad(part, like):
            total = torch.from_numpy(part).sum(0).transpose(-1, -2)  # (b, g, n, L)
            return (total.squeeze(1) if like.dim() == 3 else total).to(like.dtype)

        need = ctx.needs_input_grad
        return (
            back(gu, u) if need[0] else None,
            back(gdelta, delta) if need[1] else None,
            back(gA_part.sum(0), A) if need[2] else None,
            group_grad(gB_part, B) if need[3] else None,
            group_grad(gC_part, C) if need[4] else None,
            back(gD_part.sum(0), D) if D is not None and need[5] else None,
            back(gz, z) if z is not None and need[6] else None,
            back(gbias_part.sum(0), delta_bias) if delta_bias is not None and need[7] else None,
            back(gh0, initial_state) if initial_state is not None and need[8] else None,
            None, None,
        )


def selective_scan_cpu(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       initial_state=None, return_last_state=False, *, checkpoint_every=None):
    """mamba_ssm's selective_scan_fn on the CPU; differentiable in every tensor argument.

    Returns out (b, d, L) in u's dtype, or (out, last_state) with last_state (b, d, n) in float32
    (float64 for float64 inputs)."""
    _check_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state)
    L = u.shape[2]
    K = int(checkpoint_every) if checkpoint_every else default_checkpoint_every(L)
    if K < 1:
        raise ValueError(f"selective_scan(cpu): checkpoint_every must be >= 1, got {checkpoint_every}")
    tensors = (u, delta, A, B, C, D, z, delta_bias, initial_state)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        out, h_last = _SelectiveScanFn.apply(u, delta, A, B, C, D, z, delta_bias, initial_state,
                                             delta_softplus, K)
    else:
        out, h_last, _ = _forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state,
                                  K, save_ckpt=False)
        out = out.to(u.dtype)
    return (out, h_last) if return_last_state else out
