"""The float32 sequential selective scan: the definition every other backend is held against.

h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t
y_t = <C_t, h_t> + D * u_t ;  out = y * silu(z)
"""

import torch
import torch.nn.functional as F


def expand_groups(BC: torch.Tensor, d: int) -> torch.Tensor:
    """(b, n, L) or (b, g, n, L) -> (b, d, n, L) view-or-copy where channel i uses group i // (d // g)."""
    if BC.dim() == 3:
        return BC.unsqueeze(1).expand(-1, d, -1, -1)
    g = BC.shape[1]
    return BC.repeat_interleave(d // g, dim=1)


def prepare_delta(delta, delta_bias, delta_softplus):
    delta = delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return delta


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       initial_state=None, return_last_state=False):
    dtype_in = u.dtype
    b, d, L = u.shape
    n = A.shape[1]
    u = u.float()
    delta = prepare_delta(delta, delta_bias, delta_softplus)
    A = A.float()
    Bx = expand_groups(B.float(), d)
    Cx = expand_groups(C.float(), d)
    if initial_state is None:
        h = u.new_zeros(b, d, n)
    else:
        h = initial_state.float()
    ys = []
    for t in range(L):
        dt = delta[:, :, t, None]
        h = torch.exp(dt * A) * h + dt * Bx[:, :, :, t] * u[:, :, t, None]
        ys.append((h * Cx[:, :, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1) if L else u.new_zeros(b, d, 0)
    if D is not None:
        y = y + u * D.float()[None, :, None]
    if z is not None:
        y = y * F.silu(z.float())
    out = y.to(dtype_in)
    return (out, h) if return_last_state else out


def selective_state_update_ref(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False):
    """One decoding step. state (b, d, n) is updated in place; x, dt, z: (b, d); B, C: (b, n) or (b, g, n).

    Returns out (b, d) in x's dtype.
    """
    b, d = x.shape
    dt = dt.float()
    if dt_bias is not None:
        dt = dt + dt_bias.float()
    if dt_softplus:
        dt = F.softplus(dt)
    if B.dim() == 3:
        B = B.repeat_interleave(d // B.shape[1], dim=1)
        C = C.repeat_interleave(d // C.shape[1], dim=1)
    else:
        B = B[:, None, :]
        C = C[:, None, :]
    xf = x.float()
    new = torch.exp(dt[..., None] * A.float()) * state.float() + dt[..., None] * B.float() * xf[..., None]
    state.copy_(new.to(state.dtype))
    y = (new * C.float()).sum(-1)
    if D is not None:
        y = y + xf * D.float()
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(x.dtype)
