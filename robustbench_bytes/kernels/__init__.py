"""The shared selective-scan kernel (mamba_ssm's selective_scan_fn semantics, plus resumable state).

Backends: "reference" (float32 sequential loop, the oracle), "cpu" (numba, differentiable),
"triton" (CUDA tensors, forward only). "auto" picks triton for CUDA tensors and cpu otherwise; on CUDA
tensors that need a gradient it picks the (slow, differentiable) reference, since the Triton kernel has
no backward.
"""

import torch

from robustbench_bytes.kernels.reference import selective_scan_ref, selective_state_update_ref

BACKENDS = ("auto", "reference", "cpu", "triton")


def _needs_grad(tensors):
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _resolve(backend, u, tensors=()):
    if backend not in BACKENDS:
        raise ValueError(f"selective_scan: backend={backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if u.is_cuda:
            return "reference" if _needs_grad(tensors) else "triton"
        return "cpu"
    if backend == "cpu" and u.device.type != "cpu":
        raise ValueError(f"selective_scan: backend='cpu' needs CPU tensors, got {u.device.type} tensors; "
                         "use backend='auto' or 'triton'")
    if backend == "triton" and _needs_grad(tensors):
        raise ValueError("selective_scan: backend='triton' is forward only and an input requires grad; "
                         "use backend='auto' (falls back to the differentiable reference) or torch.no_grad()")
    return backend


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   initial_state=None, return_last_state=False, backend="auto"):
    """u, delta, z: (b, d, L); A: (d, n); B, C: (b, n, L) or (b, g, n, L); D, delta_bias: (d,);
    initial_state: (b, d, n). Returns out (b, d, L), or (out, last_state) with return_last_state."""
    backend = _resolve(backend, u, (u, delta, A, B, C, D, z, delta_bias, initial_state))
    args = (u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, return_last_state)
    if backend == "reference":
        return selective_scan_ref(*args)
    if backend == "cpu":
        from robustbench_bytes.kernels.cpu import selective_scan_cpu

        return selective_scan_cpu(*args)
    from robustbench_bytes.kernels.triton_scan import selective_scan_triton

    return selective_scan_triton(*args)


def selective_state_update(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False,
                           backend="auto"):
    """One recurrent step; updates state (b, d, n) in place and returns out (b, d)."""
    backend = _resolve(backend, x)
    if backend == "triton":
        from robustbench_bytes.kernels.triton_scan import selective_state_update_triton

        return selective_state_update_triton(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)
    return selective_state_update_ref(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)
