"""A fused decoding step for a float32 Mamba-1 language model on the CPU: one numba call per token, all layers.

What MambaLM.step does with about 30 torch calls per layer, done in one compiled loop nest:
  residual += hidden; x = norm(residual); (x, z) = in_proj x; conv over the last d_conv inputs (its state updated
  in place) + SiLU; (dt, B, C) = x_proj x; delta = softplus(dt_proj dt + bias); h = exp(delta A) h + delta B x;
  y = (<C, h> + D x) silu(z); hidden = out_proj y;  then norm_f and the head.
The per-layer constants (A = -exp(A_log), the flattened conv taps) are computed once, when the weights are
packed; the weights themselves are read in place (numpy views of the module's parameters, no copy), as rows:
each output is one dot product over a contiguous row, which streams the weights at the machine's memory speed
(torch's batch-1 matrix-vector product reads them more slowly, and costs a call per product).

The result equals MambaLM.step to float32 rounding (sums are taken in another order): the tests hold it against
the module on random shapes and on the zoo's model.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from robustbench_bytes.kernels.numba_math import fexp, softplus
from robustbench_bytes.kernels.threads import start_numba_pool

# Now, not at the first step: numba's pool must be running before a compiled function calls a parallel one (a
# step would crash otherwise), and its start resets torch's thread count (kernels/threads.py).
start_numba_pool()

# 'reassoc' (a dot product may be summed in several lanes at once, as every BLAS does): the flag a vectorised dot
# product needs; NaN and infinity keep their meaning. Not 'contract' (fused multiply-add): the code compiled in the
# process and the code loaded from numba's cache fuse differently, so logits depended on which ran
# (tests/kernels/test_compile_cache.py).
_JIT = dict(cache=True, nogil=True, fastmath={"reassoc"}, error_model="numpy")
_F32 = np.float32


@numba.njit(**_JIT)
def _matvec(W, x, out, bias, has_bias):
    """out[o] = W[o] . x (+ bias[o]) for every row o of W (o, i), x (i,)."""
    rows, cols = W.shape
    for o in range(rows):
        acc = _F32(0.0)
        for i in range(cols):
            acc += W[o, i] * x[i]
        out[o] = acc + bias[o] if has_bias else acc


@numba.njit(parallel=True, **_JIT)
def _matvec_parallel(W, x, out, bias, has_bias):
    """_matvec with the rows shared among numba's threads (each row's sum is taken exactly as in _matvec)."""
    rows, cols = W.shape
    for o in numba.prange(rows):
        acc = _F32(0.0)
        for i in range(cols):
            acc += W[o, i] * x[i]
        out[o] = acc + bias[o] if has_bias else acc


@numba.njit(**_JIT)
def _big_matvec(W, x, out, bias, has_bias, parallel):
    if parallel:
        _matvec_parallel(W, x, out, bias, has_bias)
    else:
        _matvec(W, x, out, bias, has_bias)


@numba.njit(**_JIT)
def _norm(x, w, b, out, rms, eps):
    """RMSNorm (rms) or LayerNorm with bias b of x into out."""
    d = x.shape[0]
    if rms:
        ss = _F32(0.0)
        for i in range(d):
            ss += x[i] * x[i]
        scale = _F32(1.0) / np.sqrt(ss / _F32(d) + eps)
        for i in range(d):
            out[i] = x[i] * scale * w[i]
        return
    mean = _F32(0.0)
    for i in range(d):
        mean += x[i]
    mean = mean / _F32(d)
    var = _F32(0.0)
    for i in range(d):
        c = x[i] - mean
        var += c * c
    scale = _F32(1.0) / np.sqrt(var / _F32(d) + eps)
    for i in range(d):
        out[i] = (x[i] - mean) * scale * w[i] + b[i]


@numba.njit(**_JIT)
def _conv_silu(x, conv_w, conv_b, has_bias, state):
    """x (di,) <- silu(causal depthwise conv of [state, x]); state (di, k-1) shifts in place to end with x."""
    di, k = conv_w.shape
    for c in range(di):
        xc = x[c]
        acc = _F32(0.0)
        for j in range(k - 1):
            acc += conv_w[c, j] * state[c, j]
        acc += conv_w[c, k - 1] * xc
        if has_bias:
            acc += conv_b[c]
        for j in range(k - 2):
            state[c, j] = state[c, j + 1]
        if k > 1:
            state[c, k - 2] = xc
        x[c] = acc / (_F32(1.0) + fexp(-acc))


@numba.njit(**_JIT)
def _ssm(x, z, delta, dt_bias, A, D, dbc, rank, h, y):
    """One step of the selective scan for every channel: h (di, n) in place; y (di,) = (<C, h> + D x) silu(z)."""
    di, n = A.shape
    for c in range(di):
        dt = softplus(delta[c] + dt_bias[c])
        xc = x[c]
        acc = _F32(0.0)
        for s in range(n):
            hs = fexp(dt * A[c, s]) * h[c, s] + dt * dbc[rank + s] * xc
            h[c, s] = hs
            acc += hs * dbc[rank + n + s]
        zc = z[c]
        y[c] = (acc + xc * D[c]) * (zc / (_F32(1.0) + fexp(-zc)))


@numba.njit(**_JIT)
def _layer(hidden, residual, first, norm_w, norm_b, in_w, in_b, conv_w, conv_b, xp_w, dt_w, dt_b, A, D, out_w, out_b,
           conv_state, ssm_state, rms, eps, has_in_b, has_conv_b, has_out_b, normed, xz, dbc, delta, y, parallel):
    """One Mamba block: residual += hidden (or = hidden in the first layer), hidden = mixer(norm(residual))."""
    d = hidden.shape[0]
    di = conv_w.shape[0]
    rank = dt_w.shape[1]
    for i in range(d):
        residual[i] = hidden[i] if first else residual[i] + hidden[i]
    _norm(residual, norm_w, norm_b, normed, rms, eps)
    _big_matvec(in_w, normed, xz, in_b, has_in_b, parallel)
    x = xz[:di]
    z = xz[di:]
    _conv_silu(x, conv_w, conv_b, has_conv_b, conv_state)
    _matvec(xp_w, x, dbc, dbc, False)
    _matvec(dt_w, dbc[:rank], delta, delta, False)
    _ssm(x, z, delta, dt_b, A, D, dbc, rank, ssm_state, y)
    _big_matvec(out_w, y, hidden, out_b, has_out_b, parallel)


@numba.njit(**_JIT)
def fused_step(token, emb, layers, consts, conv_states, ssm_states, normf_w, normf_b, head, rms, eps, flags,
               scratch, logits, parallel):
    """logits (V,) after feeding `token`; conv_states and ssm_states (one (di, k-1) / (di, n) array per layer)
    are updated in place. layers: per-layer tuples of weights (see FusedMamba); flags: (has_in_b, has_conv_b,
    has_out_b); scratch: (hidden, residual, normed, xz, dbc, delta, y); parallel: the in/out projections and the
    head share their rows among numba's threads."""
    hidden, residual, normed, xz, dbc, delta, y = scratch
    d = hidden.shape[0]
    for i in range(d):
        hidden[i] = emb[token, i]
    for li in range(len(conv_states)):
        norm_w, norm_b, in_w, in_b, conv_w, conv_b, xp_w, dt_w, dt_b, out_w, out_b = layers[li]
        A, D = consts[li]
        _layer(hidden, residual, li == 0, norm_w, norm_b, in_w, in_b, conv_w, conv_b, xp_w, dt_w, dt_b, A, D, out_w,
               out_b, conv_states[li], ssm_states[li], rms, eps, flags[0], flags[1], flags[2], normed, xz, dbc,
               delta, y, parallel)
    for i in range(d):
        residual[i] = hidden[i] if len(conv_states) == 0 else residual[i] + hidden[i]
    _norm(residual, normf_w, normf_b, normed, rms, eps)
    _big_matvec(head, normed, logits, logits, False, parallel)


# Below this many bytes of weights a step is too short for a parallel region's start and join to pay (the zoo's
# models: 8 MB, 0.3 ms a step); above, the projections' rows are shared among numba's threads when it has several.
PARALLEL_MIN_BYTES = 64 * 2**20


def supports(module) -> bool:
    """Whether the fused step can run `module`: exactly a MambaLM (a subclass may change step(): the class itself
    declares FUSED_CPU_STEP, which a subclass does not inherit here), on the CPU, in float32. (No import of the
    model: models/mamba.py chooses this kernel, the kernel does not depend on it.)"""
    if not type(module).__dict__.get("FUSED_CPU_STEP", False):
        return False
    return all(p.device.type == "cpu" and p.dtype == torch.float32 for p in module.parameters())


def _view(t: torch.Tensor) -> np.ndarray:
    """A float32 C-contiguous numpy array holding `t`'s values: the same memory when t already is one."""
    return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)


def _zeros_like_absent(t, n):
    return _view(t) if t is not None else np.zeros(n, dtype=np.float32)


class FusedMamba:
    """A MambaLM's weights packed for fused_step, with the recurrent state (one conv and one ssm array per
    layer) and scratch buffers preallocated. step(token) -> logits (a numpy array reused by the next step).
    parallel: share the big projections' rows among numba's threads (None: when numba has several threads at
    step time and the weights reach PARALLEL_MIN_BYTES). The logits are the same either way, bit for bit."""

    def __init__(self, module, parallel: bool | None = None):
        if not supports(module):
            raise ValueError("FusedMamba: expected a float32 MambaLM on the CPU")
        cfg = module.config
        self.config = cfg
        self.state_type = type(module.init_state(0, "cpu"))  # MambaState
        d, di, n, k, r = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.d_conv, cfg.dt_rank
        layers, consts = [], []
        for block in module.backbone.layers:
            m = block.mixer
            norm_b = getattr(block.norm, "bias", None)
            layers.append((_view(block.norm.weight), _zeros_like_absent(norm_b, d),
                           _view(m.in_proj.weight), _zeros_like_absent(m.in_proj.bias, 2 * di),
                           _view(m.conv1d.weight[:, 0, :]), _zeros_like_absent(m.conv1d.bias, di),
                           _view(m.x_proj.weight), _view(m.dt_proj.weight), _view(m.dt_proj.bias),
                           _view(m.out_proj.weight), _zeros_like_absent(m.out_proj.bias, d)))
            with torch.no_grad():
                consts.append((_view(-torch.exp(m.A_log.float())).copy(), _view(m.D)))
        self.layers, self.consts = tuple(layers), tuple(consts)
        mixer = module.backbone.layers[0].mixer if cfg.n_layer else None
        self.flags = (mixer is not None and mixer.in_proj.bias is not None,
                      mixer is not None and mixer.conv1d.bias is not None,
                      mixer is not None and mixer.out_proj.bias is not None)
        self.emb = _view(module.backbone.embedding.weight)
        self.head = _view(module.lm_head.weight)
        self.normf_w = _view(module.backbone.norm_f.weight)
        self.normf_b = _zeros_like_absent(getattr(module.backbone.norm_f, "bias", None), d)
        self.rms, self.eps = bool(cfg.rms_norm), _F32(cfg.norm_epsilon)
        self.conv = tuple(np.zeros((di, k - 1), dtype=np.float32) for _ in range(cfg.n_layer))
        self.ssm = tuple(np.zeros((di, n), dtype=np.float32) for _ in range(cfg.n_layer))
        self.scratch = (np.zeros(d, np.float32), np.zeros(d, np.float32), np.zeros(d, np.float32),
                        np.zeros(2 * di, np.float32), np.zeros(r + 2 * n, np.float32), np.zeros(di, np.float32),
                        np.zeros(di, np.float32))
        self.logits = np.zeros(self.head.shape[0], dtype=np.float32)
        self.parallel = parallel
        self.weight_bytes = 4 * sum(p.numel() for p in module.parameters())

    def step(self, token: int) -> np.ndarray:
        if not 0 <= token < self.emb.shape[0]:
            raise IndexError(f"token id {token} out of range [0, {self.emb.shape[0]})")
        parallel = self.parallel
        if parallel is None:
            parallel = self.weight_bytes >= PARALLEL_MIN_BYTES and numba.get_num_threads() > 1
        fused_step(int(token), self.emb, self.layers, self.consts, self.conv, self.ssm, self.normf_w, self.normf_b,
                   self.head, self.rms, self.eps, self.flags, self.scratch, self.logits, bool(parallel))
        return self.logits

    def load_state(self, state) -> None:
        """Copies a MambaState (batch 1) into the preallocated state."""
        for i in range(self.config.n_layer):
            np.copyto(self.conv[i], state.conv[i][0].detach().float().numpy())
            np.copyto(self.ssm[i], state.ssm[i][0].detach().float().numpy())

    def state(self):
        """The state as a MambaState (batch 1) whose tensors share memory with the preallocated arrays."""
        return self.state_type([torch.from_numpy(c)[None] for c in self.conv],
                               [torch.from_numpy(s)[None] for s in self.ssm])

    def save(self):
        return tuple(c.copy() for c in self.conv), tuple(s.copy() for s in self.ssm)

    def restore(self, saved) -> None:
        conv, ssm = saved
        for dst, src in zip(self.conv + self.ssm, conv + ssm):
            np.copyto(dst, src)
