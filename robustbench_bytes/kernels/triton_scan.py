"""Triton forward selective scan and one-step state update, for CUDA tensors.

Grid: (batch, blocks of BLOCK_D channels). Each program carries its (BLOCK_D, n) float32 state across the
sequence in chunks of BLOCK_L steps; inside a chunk the linear recurrence h_t = a_t h_{t-1} + b_t is an
associative scan over (a, b) pairs, then the carried state enters as h_t = (prod a) h_in + (scanned b).
delta_bias, softplus, D and the silu(z) gate are fused; inputs may be float32, float16 or bfloat16 and
are loaded as float32 (bf16 arithmetic inside the scan is not safe); out has u's dtype; the last state is
float32. Blocks never straddle a B/C group, so a chunk loads one (BLOCK_L, n) tile of B and of C.

Without a GPU, Triton runs only under its interpreter: TRITON_INTERPRET=1 set before triton is first
imported. Then CPU tensors are accepted (that is how the tests check this file on every commit).
"""

import os

import torch

INTERPRET = os.environ.get("TRITON_INTERPRET", "") == "1"

try:
    import triton
    import triton.language as tl
except ImportError:  # e.g. macOS: no Triton wheel
    triton = None


def _unavailable(what: str) -> str:
    if triton is None:
        return f"{what}: backend='triton' needs the triton package, which is not installed; use backend='cpu'"
    return ""


def _check_device(what: str, tensor: torch.Tensor) -> None:
    problem = _unavailable(what)
    if problem:
        raise ValueError(problem)
    if not tensor.is_cuda and not INTERPRET:
        raise ValueError(
            f"{what}: backend='triton' needs CUDA tensors, got {tensor.device.type} tensors; use backend='cpu' "
            "(or set TRITON_INTERPRET=1 before importing triton to run the kernel in Triton's CPU interpreter)")


if triton is not None:

    @triton.jit
    def _combine(a_left, b_left, a_right, b_right):
        # composition of h -> a_left h + b_left, then h -> a_right h + b_right
        return a_right * a_left, a_right * b_left + b_right

    @triton.jit
    def _softplus(x):
        return tl.where(x > 20.0, x, tl.log(1.0 + tl.exp(tl.minimum(x, 20.0))))

    @triton.jit
    def _scan_fwd_kernel(
        u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, h0_ptr, out_ptr, hlast_ptr,
        d, L, n, per_group,
        s_ub, s_ud, s_db, s_dd, s_ad, s_an, s_bb, s_bg, s_bn, s_cb, s_cg, s_cn,
        s_zb, s_zd, s_ob, s_od, s_hb, s_hd, s_hn, s_lb, s_ld, s_ln,
        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_H0: tl.constexpr,
        SOFTPLUS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_N: tl.constexpr,
    ):
        pid_b = tl.program_id(0)
        pid_d = tl.program_id(1)
        offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        offs_l = tl.arange(0, BLOCK_L)
        mask_d = offs_d < d
        mask_n = offs_n < n
        mask_dn = mask_d[:, None] & mask_n[None, :]
        group = (pid_d * BLOCK_D) // per_group

        A = tl.load(A_ptr + offs_d[:, None] * s_ad + offs_n[None, :] * s_an, mask=mask_dn, other=0.0).to(tl.float32)
        if HAS_H0:
            h = tl.load(h0_ptr + pid_b * s_hb + offs_d[:, None] * s_hd + offs_n[None, :] * s_hn,
                        mask=mask_dn, other=0.0).to(tl.float32)
        else:
            h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
        if HAS_D:
            Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)

        u_row = u_ptr + pid_b * s_ub + offs_d[:, None] * s_ud
        delta_row = delta_ptr + pid_b * s_db + offs_d[:, None] * s_dd
        z_row = z_ptr + pid_b * s_zb + offs_d[:, None] * s_zd
        out_row = out_ptr + pid_b * s_ob + offs_d[:, None] * s_od
        B_base = B_ptr + pid_b * s_bb + group * s_bg + offs_n[None, :] * s_bn
        C_base = C_ptr + pid_b * s_cb + group * s_cg + offs_n[None, :] * s_cn
        is_last = (offs_l == BLOCK_L - 1)[None, :, None]

        for l0 in range(0, L, BLOCK_L):
            t = l0 + offs_l
            mask_l = t < L
            mask_dl = mask_d[:, None] & mask_l[None, :]
            mask_ln = mask_l[:, None] & mask_n[None, :]
            u = tl.load(u_row + t[None, :], mask=mask_dl, other=0.0).to(tl.float32)
            dt = tl.load(delta_row + t[None, :], mask=mask_dl, other=0.0).to(tl.float32)
            if HAS_BIAS:
                dt = dt + bias[:, None]
            if SOFTPLUS:
                dt = _softplus(dt)
            dt = tl.where(mask_dl, dt, 0.0)  # past the end: decay exp(0) = 1 and no input, the state carries
            Bt = tl.load(B_base + t[:, None], mask=mask_ln, other=0.0).to(tl.float32)  # (BLOCK_L, BLOCK_N)
            Ct = tl.load(C_base + t[:, None], mask=mask_ln, other=0.0).to(tl.float32)
            decay = tl.exp(dt[:, :, None] * A[:, None, :])  # (BLOCK_D, BLOCK_L, BLOCK_N)
            inject = (dt * u)[:, :, None] * Bt[None, :, :]
            prod, acc = tl.associative_scan((decay, inject), 1, _combine)
            states = prod * h[:, None, :] + acc
            y = tl.sum(states * Ct[None, :, :], axis=2)  # (BLOCK_D, BLOCK_L)
            h = tl.sum(tl.where(is_last, states, 0.0), axis=1)
            if HAS_D:
                y += Dv[:, None] * u
            if HAS_Z:
                zt = tl.load(z_row + t[None, :], mask=mask_dl, other=0.0).to(tl.float32)
                y = y * (zt * tl.sigmoid(zt))
            tl.store(out_row + t[None, :], y.to(out_ptr.dtype.element_ty), mask=mask_dl)

        tl.store(hlast_ptr + pid_b * s_lb + offs_d[:, None] * s_ld + offs_n[None, :] * s_ln, h, mask=mask_dn)

    @triton.jit
    def _state_update_kernel(
        state_ptr, x_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr,
        d, n, per_group,
        s_sb, s_sd, s_sn, s_xb, s_xd, s_tb, s_td, s_ad, s_an, s_bb, s_bg, s_bn, s_cb, s_cg, s_cn,
        s_zb, s_zd, s_ob, s_od,
        HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
        BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
    ):
        pid_b = tl.program_id(0)
        pid_d = tl.program_id(1)
        offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        mask_d = offs_d < d
        mask_n = offs_n < n
        mask_dn = mask_d[:, None] & mask_n[None, :]
        group = (pid_d * BLOCK_D) // per_group
        state_at = state_ptr + pid_b * s_sb + offs_d[:, None] * s_sd + offs_n[None, :] * s_sn
        h = tl.load(state_at, mask=mask_dn, other=0.0).to(tl.float32)
        x = tl.load(x_ptr + pid_b * s_xb + offs_d * s_xd, mask=mask_d, other=0.0).to(tl.float32)
        dt = tl.load(dt_ptr + pid_b * s_tb + offs_d * s_td, mask=mask_d, other=0.0).to(tl.float32)
        if HAS_BIAS:
            dt += tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        if SOFTPLUS:
            dt = _softplus(dt)
        A = tl.load(A_ptr + offs_d[:, None] * s_ad + offs_n[None, :] * s_an, mask=mask_dn, other=0.0).to(tl.float32)
        Bv = tl.load(B_ptr + pid_b * s_bb + group * s_bg + offs_n * s_bn, mask=mask_n, other=0.0).to(tl.float32)
        Cv = tl.load(C_ptr + pid_b * s_cb + group * s_cg + offs_n * s_cn, mask=mask_n, other=0.0).to(tl.float32)
        h = tl.exp(dt[:, None] * A) * h + (dt * x)[:, None] * Bv[None, :]
        tl.store(state_at, h.to(state_ptr.dtype.element_ty), mask=mask_dn)
        y = tl.sum(h * Cv[None, :], axis=1)
        if HAS_D:
            y += tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32) * x
        if HAS_Z:
            zt = tl.load(z_ptr + pid_b * s_zb + offs_d * s_zd, mask=mask_d, other=0.0).to(tl.float32)
            y = y * (zt * tl.sigmoid(zt))
        tl.store(out_ptr + pid_b * s_ob + offs_d * s_od, y.to(out_ptr.dtype.element_ty), mask=mask_d)


def _pow2_at_least(x: int) -> int:
    p = 1
    while p < x:
        p *= 2
    return p


def _block_d(per_group: int, target: int) -> int:
    """Largest power of two <= target that divides per_group: a block never straddles a B/C group."""
    block = 1
    while block * 2 <= target and per_group % (block * 2) == 0:
        block *= 2
    return block


def _last_dim_contiguous(x):
    return x if x is None or x.stride(-1) == 1 else x.contiguous()


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          initial_state=None, return_last_state=False, *, block_d=8, block_l=32, num_warps=4):
    """Forward only (no autograd): the decoding/scoring path on GPUs. Same shapes as the reference."""
    _check_device("selective_scan", u)
    b, d, L = u.shape
    n = A.shape[1]
    if B.dim() == 3:
        B = B.unsqueeze(1)
    if C.dim() == 3:
        C = C.unsqueeze(1)
    g = B.shape[1]
    if d % g or C.shape[1] != g:
        raise ValueError(f"selective_scan(triton): B/C groups {B.shape[1]}/{C.shape[1]} must match and divide d={d}")
    u, delta, z, B, C = (_last_dim_contiguous(x) for x in (u, delta, z, B, C))
    per_group = d // g
    BLOCK_D = _block_d(per_group, block_d)
    out = torch.empty((b, d, L), dtype=u.dtype, device=u.device)
    h_last = torch.empty((b, d, n), dtype=torch.float32, device=u.device)
    dummy = out
    h0 = initial_state if initial_state is not None else h_last
    zz = z if z is not None else out
    grid = (b, triton.cdiv(d, BLOCK_D))
    _scan_fwd_kernel[grid](
        u, delta, A, B, C, D if D is not None else dummy, zz,
        delta_bias if delta_bias is not None else dummy, h0, out, h_last,
        d, L, n, per_group,
        u.stride(0), u.stride(1), delta.stride(0), delta.stride(1), A.stride(0), A.stride(1),
        B.stride(0), B.stride(1), B.stride(2), C.stride(0), C.stride(1), C.stride(2),
        zz.stride(0), zz.stride(1), out.stride(0), out.stride(1),
        h0.stride(0), h0.stride(1), h0.stride(2), h_last.stride(0), h_last.stride(1), h_last.stride(2),
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
        HAS_H0=initial_state is not None, SOFTPLUS=bool(delta_softplus),
        BLOCK_D=BLOCK_D, BLOCK_L=block_l, BLOCK_N=_pow2_at_least(n), num_warps=num_warps,
    )
    return (out, h_last) if return_last_state else out


def selective_state_update_triton(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False,
                                  *, block_d=16, num_warps=4):
    """One decoding step; updates state (b, d, n) in place; returns out (b, d) in x's dtype."""
    _check_device("selective_state_update", x)
    b, d = x.shape
    n = A.shape[1]
    if B.dim() == 2:
        B = B.unsqueeze(1)
    if C.dim() == 2:
        C = C.unsqueeze(1)
    g = B.shape[1]
    per_group = d // g
    BLOCK_D = _block_d(per_group, block_d)
    out = torch.empty((b, d), dtype=x.dtype, device=x.device)
    zz = z if z is not None else out
    grid = (b, triton.cdiv(d, BLOCK_D))
    _state_update_kernel[grid](
        state, x, dt, A, B, C, D if D is not None else out, zz, dt_bias if dt_bias is not None else out, out,
        d, n, per_group,
        state.stride(0), state.stride(1), state.stride(2), x.stride(0), x.stride(1), dt.stride(0), dt.stride(1),
        A.stride(0), A.stride(1), B.stride(0), B.stride(1), B.stride(2), C.stride(0), C.stride(1), C.stride(2),
        zz.stride(0), zz.stride(1), out.stride(0), out.stride(1),
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=dt_bias is not None, SOFTPLUS=bool(dt_softplus),
        BLOCK_D=BLOCK_D, BLOCK_N=_pow2_at_least(n), num_warps=num_warps,
    )
    return out
