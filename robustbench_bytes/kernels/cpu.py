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
from numba import prange
from torch.autograd.function import once_differentiable

from robustbench_bytes.kernels.numba_math import fexp, sigmoid, softplus
from robustbench_bytes.kernels.threads import start_numba_pool

start_numba_pool()  # now, not at the first scan: that would reset torch's thread count (kernels/threads.py)

# Of the fast-math flags only 'contract' (a*b+c may become one fused multiply-add, rounded once): it
# keeps NaN/inf semantics and summation order (no reassociation), and is ~15% faster on FMA machines.
_JIT = dict(parallel=True, cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")
# The bodies of the two parallel loops are functions of their own, compiled without `parallel`: numba's parallel
# pass then handles a one-line loop. The backward compiles about a third faster (first use on 2 cores: 15-19 s ->
# 10-13 s); the results are the same bit for bit, at the same speed. The loop index is passed as np.int64: the
# parallel lowering makes it unsigned, which would compile each body twice.
_BLOCK_JIT = {**_JIT, "parallel": False}

# Channels are processed LANES at a time, with the state of a block laid out (n, LANES): the inner loop
# runs over channels, so it vectorises without reassociating any sum. The kernels take the lane count
# as an argument (W) on purpose: with a compile-time 16, LLVM fully unrolls the lane loops and then
# cannot prove the scratch arrays distinct, leaving scalar code; as a loop, it vectorises them behind
# runtime alias checks (2x faster backward). u, delta, z are staged through
# small (LANES, T) -> (T, LANES) tiles so that every inner loop reads contiguous memory.
LANES = 16
FORWARD_TILE = 64


@numba.njit
def _block(item, d, g, per_group, blocks_per_group, lanes):
    bi = item // (g * blocks_per_group)
    gi = (item // blocks_per_group) % g
    d0 = gi * per_group + (item % blocks_per_group) * lanes
    w = min(lanes, gi * per_group + per_group - d0)
    return bi, gi, d0, w


@numba.njit
def _transpose(src, dst, rows, cols):
    """dst[j, i] = src[i, j] for i < rows, j < cols."""
    for j in range(cols):
        for i in range(rows):
            dst[j, i] = src[i, j]


@numba.njit
def _stage_delta(u, delta, bias, bi, d0, w, t0, tl, has_bias, softplus_on, zero, s_dt, s_du):
    for dd in range(w):
        bv = bias[d0 + dd] if has_bias else zero
        drow = delta[bi, d0 + dd]
        urow = u[bi, d0 + dd]
        sdt = s_dt[dd]
        sdu = s_du[dd]
        for tt in range(tl):
            raw = drow[t0 + tt] + bv
            dt = softplus(raw) if softplus_on else raw
            sdt[tt] = dt
            sdu[tt] = dt * urow[t0 + tt]


@numba.njit(**_JIT)
def _scan_forward(u, delta, At, Bt, Ct, D, z, bias, h0, out, h_last, ckpt, K,
                  has_D, has_z, has_bias, has_h0, softplus_on, save_ckpt, zero, one, W):
    """u, delta, z, out: (b, d, L); At: (n, d) (A transposed); Bt, Ct: (b, g, L, n); D, bias: (d,);
    h0, h_last: (b, d, n); ckpt: (b, d, ceil(L/K), n), the state before each chunk of K steps."""
    b, d, L = u.shape
    g = Bt.shape[1]
    bpg = (d // g + W - 1) // W
    for item in prange(b * g * bpg):
        _forward_block(np.int64(item), u, delta, At, Bt, Ct, D, z, bias, h0, out, h_last, ckpt, K,
                       has_D, has_z, has_bias, has_h0, softplus_on, save_ckpt, zero, one, W)


@numba.njit(**_BLOCK_JIT)
def _forward_block(item, u, delta, At, Bt, Ct, D, z, bias, h0, out, h_last, ckpt, K,
                   has_D, has_z, has_bias, has_h0, softplus_on, save_ckpt, zero, one, W):
    """Block `item` of _scan_forward: W channels of one batch row through all L steps."""
    b, d, L = u.shape
    n = At.shape[0]
    g = Bt.shape[1]
    per_group = d // g
    bpg = (per_group + W - 1) // W
    T = FORWARD_TILE
    bi, gi, d0, w = _block(item, d, g, per_group, bpg, W)
    h = np.zeros((n, W), dtype=u.dtype)
    a = np.zeros((n, W), dtype=u.dtype)
    s_dt = np.zeros((W, T), dtype=u.dtype)
    s_du = np.zeros((W, T), dtype=u.dtype)
    s_y = np.zeros((W, T), dtype=u.dtype)
    dt_tile = np.zeros((T, W), dtype=u.dtype)
    du_tile = np.zeros((T, W), dtype=u.dtype)
    y_tile = np.zeros((T, W), dtype=u.dtype)
    for k in range(n):
        for dd in range(w):
            a[k, dd] = At[k, d0 + dd]
            if has_h0:
                h[k, dd] = h0[bi, d0 + dd, k]
    for t0 in range(0, L, T):
        tl = min(T, L - t0)
        _stage_delta(u, delta, bias, bi, d0, w, t0, tl, has_bias, softplus_on, zero, s_dt, s_du)
        _transpose(s_dt, dt_tile, W, tl)
        _transpose(s_du, du_tile, W, tl)
        for tt in range(tl):
            t = t0 + tt
            if save_ckpt and t % K == 0:
                for dd in range(w):
                    for k in range(n):
                        ckpt[bi, d0 + dd, t // K, k] = h[k, dd]
            dtv = dt_tile[tt]
            duv = du_tile[tt]
            yv = y_tile[tt]
            for dd in range(W):
                yv[dd] = zero
            bt = Bt[bi, gi, t]
            ct = Ct[bi, gi, t]
            for k in range(n):
                bk = bt[k]
                ck = ct[k]
                hk = h[k]
                ak = a[k]
                for dd in range(W):
                    hv = fexp(dtv[dd] * ak[dd]) * hk[dd] + duv[dd] * bk
                    hk[dd] = hv
                    yv[dd] += ck * hv
        _transpose(y_tile, s_y, tl, W)
        for dd in range(w):
            Dv = D[d0 + dd] if has_D else zero
            urow = u[bi, d0 + dd]
            zrow = z[bi, d0 + dd] if has_z else z[0, 0]
            orow = out[bi, d0 + dd]
            sy = s_y[dd]
            for tt in range(tl):
                y = sy[tt]
                if has_D:
                    y += Dv * urow[t0 + tt]
                if has_z:
                    zt = zrow[t0 + tt]
                    y = y * (zt * sigmoid(zt))
                orow[t0 + tt] = y
    for dd in range(w):
        for k in range(n):
            h_last[bi, d0 + dd, k] = h[k, dd]


@numba.njit(**_JIT)
def _scan_backward(u, delta, At, Bt, Ct, D, z, bias, ckpt, K, gout, glast,
                   has_D, has_z, has_bias, has_glast, softplus_on, n_slots, zero, one, W,
                   gu, gdelta, gz, gA_part, gD_part, gbias_part, gh0, gB_part, gC_part):
    """Reverse pass, chunk by chunk from the last: recompute the chunk's states from its checkpoint into
    a (K+1, n, W) scratch, then run the reverse recurrence. Per-(batch, channel) partials gA_part
    (b, d, n), gD_part and gbias_part (b, d); gB_part, gC_part: (n_slots, b, g, L, n), one slice per
    parallel slot (each slot owns the blocks item = slot, slot + n_slots, ...)."""
    for slot in prange(n_slots):
        _backward_slot(np.int64(slot), u, delta, At, Bt, Ct, D, z, bias, ckpt, K, gout, glast,
                       has_D, has_z, has_bias, has_glast, softplus_on, n_slots, zero, one, W,
                       gu, gdelta, gz, gA_part, gD_part, gbias_part, gh0, gB_part, gC_part)


@numba.njit(**_BLOCK_JIT)
def _backward_slot(slot, u, delta, At, Bt, Ct, D, z, bias, ckpt, K, gout, glast,
                   has_D, has_z, has_bias, has_glast, softplus_on, n_slots, zero, one, W,
                   gu, gdelta, gz, gA_part, gD_part, gbias_part, gh0, gB_part, gC_part):
    """Parallel slot `slot` of _scan_backward: the blocks item = slot, slot + n_slots, ... one after another."""
    b, d, L = u.shape
    n = At.shape[0]
    g = Bt.shape[1]
    per_group = d // g
    bpg = (per_group + W - 1) // W
    n_items = b * g * bpg
    n_chunks = ckpt.shape[2]
    hs = np.zeros((K + 1, n, W), dtype=u.dtype)
    es = np.zeros((K, n, W), dtype=u.dtype)
    a = np.zeros((n, W), dtype=u.dtype)
    carry = np.zeros((n, W), dtype=u.dtype)  # dLoss/dh_t arriving from step t+1
    gA_acc = np.zeros((n, W), dtype=u.dtype)
    s_dt = np.zeros((W, K), dtype=u.dtype)
    s_du = np.zeros((W, K), dtype=u.dtype)
    s_u = np.zeros((W, K), dtype=u.dtype)
    s_y = np.zeros((W, K), dtype=u.dtype)
    s_gy = np.zeros((W, K), dtype=u.dtype)
    s_gu = np.zeros((W, K), dtype=u.dtype)
    s_gdt = np.zeros((W, K), dtype=u.dtype)
    dt_t = np.zeros((K, W), dtype=u.dtype)
    du_t = np.zeros((K, W), dtype=u.dtype)
    u_t = np.zeros((K, W), dtype=u.dtype)
    y_t = np.zeros((K, W), dtype=u.dtype)
    gy_t = np.zeros((K, W), dtype=u.dtype)
    gu_t = np.zeros((K, W), dtype=u.dtype)
    gdt_t = np.zeros((K, W), dtype=u.dtype)
    gBv = np.zeros(W, dtype=u.dtype)
    gCv = np.zeros(W, dtype=u.dtype)
    gD_acc = np.zeros(W, dtype=u.dtype)
    gbias_acc = np.zeros(W, dtype=u.dtype)
    for item in range(slot, n_items, n_slots):
        bi, gi, d0, w = _block(item, d, g, per_group, bpg, W)
        for k in range(n):
            for dd in range(W):
                a[k, dd] = At[k, d0 + dd] if dd < w else zero
                carry[k, dd] = glast[bi, d0 + dd, k] if has_glast and dd < w else zero
                gA_acc[k, dd] = zero
        for dd in range(W):
            gD_acc[dd] = zero
            gbias_acc[dd] = zero
        for c in range(n_chunks - 1, -1, -1):
            t0 = c * K
            tl = min(K, L - t0)
            _stage_delta(u, delta, bias, bi, d0, w, t0, tl, has_bias, softplus_on, zero, s_dt, s_du)
            for dd in range(w):
                urow = u[bi, d0 + dd]
                for tt in range(tl):
                    s_u[dd, tt] = urow[t0 + tt]
            _transpose(s_dt, dt_t, W, tl)
            _transpose(s_du, du_t, W, tl)
            _transpose(s_u, u_t, W, tl)
            for k in range(n):
                for dd in range(W):
                    hs[0, k, dd] = ckpt[bi, d0 + dd, c, k] if dd < w else zero
            for tt in range(tl):
                t = t0 + tt
                dtv = dt_t[tt]
                duv = du_t[tt]
                yv = y_t[tt]
                for dd in range(W):
                    yv[dd] = zero
                bt = Bt[bi, gi, t]
                ct = Ct[bi, gi, t]
                for k in range(n):
                    bk = bt[k]
                    ck = ct[k]
                    ak = a[k]
                    hprev = hs[tt, k]
                    hnext = hs[tt + 1, k]
                    ek = es[tt, k]
                    for dd in range(W):
                        e = fexp(dtv[dd] * ak[dd])
                        ek[dd] = e
                        hv = e * hprev[dd] + duv[dd] * bk
                        hnext[dd] = hv
                        yv[dd] += ck * hv
            _transpose(y_t, s_y, tl, W)
            for dd in range(w):
                Dv = D[d0 + dd] if has_D else zero
                grow = gout[bi, d0 + dd]
                zrow = z[bi, d0 + dd] if has_z else z[0, 0]
                gzrow = gz[bi, d0 + dd] if has_z else gz[0, 0]
                su = s_u[dd]
                sy = s_y[dd]
                sgy = s_gy[dd]
                sgu = s_gu[dd]
                acc = zero
                for tt in range(tl):
                    go = grow[t0 + tt]
                    ut = su[tt]
                    if has_z:
                        y = sy[tt] + Dv * ut if has_D else sy[tt]
                        zt = zrow[t0 + tt]
                        sz = sigmoid(zt)
                        gzrow[t0 + tt] = go * y * (sz * (one + zt * (one - sz)))
                        gy = go * (zt * sz)
                    else:
                        gy = go
                    sgy[tt] = gy
                    acc += gy * ut
                    sgu[tt] = gy * Dv
                gD_acc[dd] += acc
            _transpose(s_gy, gy_t, W, tl)
            _transpose(s_gu, gu_t, W, tl)
            for tt in range(tl - 1, -1, -1):
                t = t0 + tt
                dtv = dt_t[tt]
                duv = du_t[tt]
                uv = u_t[tt]
                gyv = gy_t[tt]
                guv = gu_t[tt]
                gdtv = gdt_t[tt]
                for dd in range(W):
                    gdtv[dd] = zero
                bt = Bt[bi, gi, t]
                ct = Ct[bi, gi, t]
                gBrow = gB_part[slot, bi, gi, t]
                gCrow = gC_part[slot, bi, gi, t]
                for k in range(n):
                    bk = bt[k]
                    ck = ct[k]
                    ak = a[k]
                    hprev = hs[tt, k]
                    hnext = hs[tt + 1, k]
                    ek = es[tt, k]
                    cr = carry[k]
                    gAk = gA_acc[k]
                    for dd in range(W):
                        gh = cr[dd] + gyv[dd] * ck
                        through_decay = gh * hprev[dd] * ek[dd]
                        gdtv[dd] += through_decay * ak[dd] + gh * bk * uv[dd]
                        gAk[dd] += through_decay * dtv[dd]
                        guv[dd] += gh * dtv[dd] * bk
                        cr[dd] = ek[dd] * gh
                        gBv[dd] = gh * duv[dd]
                        gCv[dd] = gyv[dd] * hnext[dd]
                    sB = zero
                    sC = zero
                    for dd in range(W):
                        sB += gBv[dd]
                        sC += gCv[dd]
                    gBrow[k] += sB
                    gCrow[k] += sC
            _transpose(gdt_t, s_gdt, tl, W)
            _transpose(gu_t, s_gu, tl, W)
            for dd in range(w):
                bv = bias[d0 + dd] if has_bias else zero
                drow = delta[bi, d0 + dd]
                gdrow = gdelta[bi, d0 + dd]
                gurow = gu[bi, d0 + dd]
                sgdt = s_gdt[dd]
                sgu = s_gu[dd]
                acc = zero
                for tt in range(tl):
                    gd = sgdt[tt]
                    if softplus_on:
                        raw = drow[t0 + tt] + bv
                        if not raw > 20.0:
                            gd = gd * sigmoid(raw)
                    gdrow[t0 + tt] = gd
                    acc += gd
                    gurow[t0 + tt] = sgu[tt]
                gbias_acc[dd] += acc
        for dd in range(w):
            for k in range(n):
                gh0[bi, d0 + dd, k] = carry[k, dd]
                gA_part[bi, d0 + dd, k] = gA_acc[k, dd]
            gD_part[bi, d0 + dd] = gD_acc[dd]
            gbias_part[bi, d0 + dd] = gbias_acc[dd]


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
        _scan_backward(
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
