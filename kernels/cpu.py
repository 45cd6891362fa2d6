"""Fast, differentiable CPU selective scan: fused numba loops over (batch, channel), no (b, d, L, n) tensor.

Forward: each (batch, channel) pair carries its (n,) state through L steps; extra memory is O(b*d*n).
Backward: the forward keeps the state at the start of every chunk of `checkpoint_every` steps
(b*d*n*ceil(L/K) floats); the backward walks chunks from last to first, recomputes the chunk's states
from its checkpoint into a per-thread (K, n) scratch, then runs the reverse recurrence. Recomputing
states backwards from the last state (h_{t-1} = (h_t - dt*B*u) / exp(dt*A)) is avoided on purpose: it
blows up when exp(dt*A) underflows.

Gradients for B and C, which are shared by all channels of a group, are accumulated into one buffer per
parallel block of channels and summed afterwards, so threads never write the same memory.
Inputs of any float dtype are computed in float32, except float64 (gradcheck), computed in float64.
"""

import math

import numba
import numpy as np
import torch
from numba import prange

_JIT = dict(parallel=True, cache=True, nogil=True, fastmath=False, error_model="numpy")


@numba.njit(inline="always")
def _softplus(x):
    # torch's F.softplus: threshold 20, beta 1
    if x > 20.0:
        return x
    return math.log1p(math.exp(x))


@numba.njit(**_JIT)
def _scan_forward(u, delta, A, Bt, Ct, D, z, bias, h0, out, h_last, ckpt, K,
                  has_D, has_z, has_bias, has_h0, softplus, save_ckpt, zero, one):
    """u, delta, z, out: (b, d, L); A: (d, n); Bt, Ct: (b, g, L, n); D, bias: (d,); h0, h_last: (b, d, n);
    ckpt: (b, d, ceil(L/K), n), the state before each chunk (written when save_ckpt)."""
    b, d, L = u.shape
    n = A.shape[1]
    g = Bt.shape[1]
    per_group = d // g
    for idx in prange(b * d):
        bi = idx // d
        di = idx % d
        gi = di // per_group
        h = np.zeros(n, dtype=u.dtype)
        if has_h0:
            for k in range(n):
                h[k] = h0[bi, di, k]
        a = A[di]
        bias_v = bias[di] if has_bias else zero
        D_v = D[di] if has_D else zero
        for t in range(L):
            if save_ckpt and t % K == 0:
                c = t // K
                for k in range(n):
                    ckpt[bi, di, c, k] = h[k]
            dt = delta[bi, di, t] + bias_v
            if softplus:
                dt = _softplus(dt)
            ut = u[bi, di, t]
            dtu = dt * ut
            bt = Bt[bi, gi, t]
            ct = Ct[bi, gi, t]
            y = zero
            for k in range(n):
                h[k] = math.exp(dt * a[k]) * h[k] + dtu * bt[k]
                y += ct[k] * h[k]
            if has_D:
                y += D_v * ut
            if has_z:
                zt = z[bi, di, t]
                y = y * (zt / (one + math.exp(-zt)))
            out[bi, di, t] = y
        for k in range(n):
            h_last[bi, di, k] = h[k]


@numba.njit(**_JIT)
def _scan_backward(u, delta, A, Bt, Ct, D, z, bias, ckpt, K, gout, glast,
                   has_D, has_z, has_bias, has_glast, softplus, n_blocks, zero, one,
                   gu, gdelta, gz, gA_part, gD_part, gbias_part, gh0, gB_part, gC_part):
    """Reverse pass. Per-(batch, channel) partials gA_part (b, d, n), gD_part and gbias_part (b, d);
    gB_part, gC_part: (n_blocks, b, g, L, n), one slice per parallel block of channels."""
    b, d, L = u.shape
    n = A.shape[1]
    g = Bt.shape[1]
    per_group = d // g
    n_chunks = ckpt.shape[2]
    total = b * d
    for p in prange(n_blocks):
        lo = (total * p) // n_blocks
        hi = (total * (p + 1)) // n_blocks
        hs = np.empty((K + 1, n), dtype=u.dtype)  # states before/after each step of the chunk
        es = np.empty((K, n), dtype=u.dtype)  # exp(dt * A) of each step of the chunk
        carry = np.empty(n, dtype=u.dtype)  # dLoss/dh_t arriving from step t+1
        gA_acc = np.empty(n, dtype=u.dtype)
        for idx in range(lo, hi):
            bi = idx // d
            di = idx % d
            gi = di // per_group
            a = A[di]
            bias_v = bias[di] if has_bias else zero
            D_v = D[di] if has_D else zero
            for k in range(n):
                carry[k] = glast[bi, di, k] if has_glast else zero
                gA_acc[k] = zero
            gD_acc = zero
            gbias_acc = zero
            for c in range(n_chunks - 1, -1, -1):
                t0 = c * K
                t1 = min(L, t0 + K)
                for k in range(n):
                    hs[0, k] = ckpt[bi, di, c, k]
                for t in range(t0, t1):
                    j = t - t0
                    dt = delta[bi, di, t] + bias_v
                    if softplus:
                        dt = _softplus(dt)
                    dtu = dt * u[bi, di, t]
                    bt = Bt[bi, gi, t]
                    for k in range(n):
                        e = math.exp(dt * a[k])
                        es[j, k] = e
                        hs[j + 1, k] = e * hs[j, k] + dtu * bt[k]
                for t in range(t1 - 1, t0 - 1, -1):
                    j = t - t0
                    raw = delta[bi, di, t] + bias_v
                    dt = _softplus(raw) if softplus else raw
                    ut = u[bi, di, t]
                    bt = Bt[bi, gi, t]
                    ct = Ct[bi, gi, t]
                    go = gout[bi, di, t]
                    if has_z:
                        y = zero
                        for k in range(n):
                            y += ct[k] * hs[j + 1, k]
                        if has_D:
                            y += D_v * ut
                        zt = z[bi, di, t]
                        sz = one / (one + math.exp(-zt))
                        gz[bi, di, t] = go * y * (sz * (one + zt * (one - sz)))
                        gy = go * zt * sz
                    else:
                        gy = go
                    gu_t = zero
                    if has_D:
                        gD_acc += gy * ut
                        gu_t = gy * D_v
                    gdt = zero
                    gBrow = gB_part[p, bi, gi, t]
                    gCrow = gC_part[p, bi, gi, t]
                    for k in range(n):
                        gh = carry[k] + gy * ct[k]
                        gCrow[k] += gy * hs[j + 1, k]
                        e = es[j, k]
                        through_decay = gh * hs[j, k] * e
                        gdt += through_decay * a[k] + gh * bt[k] * ut
                        gA_acc[k] += through_decay * dt
                        gBrow[k] += gh * dt * ut
                        gu_t += gh * dt * bt[k]
                        carry[k] = e * gh
                    if softplus:
                        if raw <= 20.0:
                            gdt = gdt * (one / (one + math.exp(-raw)))
                    gu[bi, di, t] = gu_t
                    gdelta[bi, di, t] = gdt
                    gbias_acc += gdt
            for k in range(n):
                gh0[bi, di, k] = carry[k]
                gA_part[bi, di, k] = gA_acc[k]
            gD_part[bi, di] = gD_acc
            gbias_part[bi, di] = gbias_acc


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
    _scan_forward(
        un, _np(delta, cdt), _np(A, cdt), _np(_grouped(B), cdt), _np(_grouped(C), cdt),
        _np(D, cdt) if D is not None else _dummy(1, cdt),
        _np(z, cdt) if z is not None else _dummy(3, cdt),
        _np(delta_bias, cdt) if delta_bias is not None else _dummy(1, cdt),
        _np(initial_state, cdt) if initial_state is not None else _dummy(3, cdt),
        out, h_last, ckpt, K,
        D is not None, z is not None, delta_bias is not None, initial_state is not None,
        bool(delta_softplus), save_ckpt, *_constants(un.dtype))
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
    def backward(ctx, gout, glast):
        u, delta, A, B, C, D, z, delta_bias, initial_state, ckpt = ctx.saved_tensors
        cdt = compute_dtype(u.dtype)
        b, d, L = u.shape
        n = A.shape[1]
        Bt = _np(_grouped(B), cdt)
        g = Bt.shape[1]
        n_blocks = max(1, min(b * d, 4 * numba.get_num_threads()))
        npdt = Bt.dtype
        gu = np.empty((b, d, L), dtype=npdt)
        gdelta = np.empty((b, d, L), dtype=npdt)
        gz = np.zeros((b, d, L), dtype=npdt) if z is not None else _dummy(3, cdt)
        gA_part = np.empty((b, d, n), dtype=npdt)
        gD_part = np.empty((b, d), dtype=npdt)
        gbias_part = np.empty((b, d), dtype=npdt)
        gh0 = np.empty((b, d, n), dtype=npdt)
        gB_part = np.zeros((n_blocks, b, g, L, n), dtype=npdt)
        gC_part = np.zeros((n_blocks, b, g, L, n), dtype=npdt)
        if gout is None:
            gout = torch.zeros(b, d, L, dtype=cdt)
        _scan_backward(
            _np(u, cdt), _np(delta, cdt), _np(A, cdt), Bt, _np(_grouped(C), cdt),
            _np(D, cdt) if D is not None else _dummy(1, cdt),
            _np(z, cdt) if z is not None else _dummy(3, cdt),
            _np(delta_bias, cdt) if delta_bias is not None else _dummy(1, cdt),
            ckpt.numpy(), ctx.K, _np(gout, cdt),
            _np(glast, cdt) if glast is not None else _dummy(3, cdt),
            D is not None, z is not None, delta_bias is not None, glast is not None,
            ctx.delta_softplus, n_blocks, *_constants(npdt),
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
