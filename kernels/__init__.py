"""The shared selective-scan kernel (mamba_ssm's selective_scan_fn semantics, plus resumable state).

Backends: "reference" (float32 sequential loop, the oracle), "cpu" (fast CPU path),
"triton" (CUDA tensors). "auto" picks triton for CUDA tensors and cpu otherwise.
"""

from robustbench_bytes.kernels.reference import selective_scan_ref, selective_state_update_ref

BACKENDS = ("auto", "reference", "cpu", "triton")


def _resolve(backend, u):
    if backend not in BACKENDS:
        raise ValueError(f"selective_scan: backend={backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "triton" if u.is_cuda else "cpu"
    return backend


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   initial_state=None, return_last_state=False, backend="auto"):
    """u, delta, z: (b, d, L); A: (d, n); B, C: (b, n, L) or (b, g, n, L); D, delta_bias: (d,);
    initial_state: (b, d, n). Returns out (b, d, L), or (out, last_state) with return_last_state."""
    backend = _resolve(backend, u)
    args = (u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, return_last_state)
    if backend == "reference":
        return selective_scan_ref(*args)
    if backend == "cpu":
        try:
            from robustbench_bytes.kernels.cpu import selective_scan_cpu
        except ImportError:  # until the fast path lands, the reference is the CPU path
            return selective_scan_ref(*args)
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
