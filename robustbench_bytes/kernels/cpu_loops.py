"""The CPU selective scan's numba loops, forward and backward side by side (over 300 lines: one recurrence and its
adjoint, read together). kernels/cpu.py wraps them for torch; its docstring says how they walk the sequence, in
blocks of LANES channels, and keep their checkpoints."""

import numba
import numpy as np
from numba import prange

from robustbench_bytes.kernels.numba_math import fexp, sigmoid, softplus
from robustbench_bytes.kernels.threads import start_numba_pool

start_numba_pool()  # now, not at the first scan: that would reset torch's thread count (kernels/threads.py)

# No fast-math flags, not even 'contract' (fused multiply-add): with it, the code numba compiles in the process and
# the code it loads from its cache fuse differently, so a run's numbers depended on whether the kernel was compiled
# by that process (NLL differing at 3e-9 relative; tests/kernels/test_compile_cache.py). It was ~15% faster.
_JIT = dict(parallel=True, cache=True, nogil=True, fastmath=False, error_model="numpy")
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
def scan_forward(u, delta, At, Bt, Ct, D, z, bias, h0, out, h_last, ckpt, K,
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
def scan_backward(u, delta, At, Bt, Ct, D, z, bias, ckpt, K, gout, glast,
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
