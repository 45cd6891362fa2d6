"""Plain decoding speed, ms per token, one thread: the fused step (ours), the reference step (MambaLM.step) and
transformers' MambaForCausalLM.generate with its cache, on the same weights, side by side in one run; at the zoo's
byte Mamba (its trained weights) and at mamba-130m's shape (random weights). Beside them the floors: the weights'
bytes over the streaming bandwidth measured here, and the network's FLOPs over the single-thread sgemm peak
measured here. Used by bench_generate.py (the decoding table of BENCHMARKS.md); not a bench part of its own.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

# llama.cpp on this machine, measured by the project (not by this script: llama.cpp is not installed here):
# `llama-bench tg128`, f32 GGUF of the same weights, 1 thread, wall ms per token (issue 24, FACTS.md).
LLAMA_CPP_MS = {"zoo": 0.40, "mamba-130m": 35.4}
LLAMA_CPP_DATE = "2026-12-06"


def streaming_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """Bytes per second one thread reads from memory: the best of `repeats` passes over a float32 array far larger
    than the caches, read by numpy's sum and by the fused step's row-dot loop (whichever streams faster)."""
    from robustbench_bytes.kernels.decode_cpu import _matvec

    a = np.ones((megabytes * 2**20 // 4096, 1024), dtype=np.float32)
    x, out = np.ones(1024, dtype=np.float32), np.zeros(a.shape[0], dtype=np.float32)
    a.sum()
    _matvec(a, x, out, out, False)
    best = min(min(_timed(lambda: a.sum()), _timed(lambda: _matvec(a, x, out, out, False))) for _ in range(repeats))
    return a.nbytes / best


def sgemm_peak(n: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of a single-thread float32 matrix product."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def last_level_cache_bytes() -> int:
    """The largest CPU cache's size (Linux sysfs), 0 where unknown."""
    from pathlib import Path

    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = f.read_text().strip().upper()
        unit = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        sizes.append(int(text.rstrip("KMG")) * unit)
    return max(sizes, default=0)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def step_flops(cfg) -> float:
    """FLOPs of one decoding step: 2 per weight of every matrix product, plus the scan (about 10 per state)."""
    d, di, n, r, k = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.dt_rank, cfg.d_conv
    per_layer = 2 * (d * 2 * di + di * (r + 2 * n) + r * di + di * d) + 10 * di * n + 2 * di * k
    return cfg.n_layer * per_layer + 2 * d * cfg.padded_vocab_size


def hf_model(module):
    """transformers' MambaForCausalLM holding `module`'s weights (LayerNorm swapped in for a LayerNorm config: the
    class itself only has RMSNorm)."""
    from transformers import MambaConfig as HFConfig, MambaForCausalLM

    cfg = module.config
    hf = MambaForCausalLM(HFConfig(hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layer,
                                   vocab_size=cfg.padded_vocab_size, state_size=cfg.d_state,
                                   expand=cfg.ssm("expand"), conv_kernel=cfg.d_conv, time_step_rank=cfg.dt_rank,
                                   use_bias=cfg.ssm("bias"), use_conv_bias=cfg.ssm("conv_bias"),
                                   layer_norm_epsilon=cfg.norm_epsilon, residual_in_fp32=cfg.residual_in_fp32,
                                   tie_word_embeddings=cfg.tie_embeddings, use_cache=True))
    if not cfg.rms_norm:
        for layer in hf.backbone.layers:
            layer.norm = torch.nn.LayerNorm(cfg.d_model, eps=cfg.norm_epsilon)
        hf.backbone.norm_f = torch.nn.LayerNorm(cfg.d_model, eps=cfg.norm_epsilon)
    state = {k.replace("backbone.embedding.", "backbone.embeddings."): v for k, v in module.state_dict().items()}
    hf.load_state_dict(state, strict=False)
    if cfg.tie_embeddings:
        hf.tie_weights()
    return hf.eval()


def _decoder_ms(module, fused: bool, tokens: int) -> float:
    """Median wall ms of one step over `tokens` greedy steps after a short prompt."""
    from robustbench_bytes.generation.decoders import MambaDecoder

    dec = MambaDecoder(module, module.config.vocab_size, torch.device("cpu"), fused=fused)
    times = []
    with torch.inference_mode():
        logits = dec.prefill([10, 65, 110, 100, 32])
        for _ in range(tokens + 2):
            token = int(logits.argmax())
            t = time.perf_counter()
            logits = dec.step(token)
            times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times[2:])


def _hf_ms(hf, tokens: int) -> float:
    """Wall ms per generated token of transformers' generate (greedy, cache): (time for 1 + tokens new tokens -
    time for 1) / tokens, so that the prompt's prefill cancels out."""
    ids = torch.tensor([[10, 65, 110, 100, 32]])
    kwargs = dict(do_sample=False, use_cache=True, pad_token_id=0)

    def run(n):
        with torch.inference_mode():
            t = time.perf_counter()
            hf.generate(ids, max_new_tokens=n, min_new_tokens=n, **kwargs)
            return time.perf_counter() - t

    run(2)
    return 1e3 * (run(1 + tokens) - run(1)) / tokens


def measure_shape(label: str, module, rounds: int, tokens: int, bandwidth: float, peak: float) -> dict:
    """The three decoders on one shape, `rounds` interleaved rounds (a shared machine's load falls on all alike);
    medians over rounds."""
    hf = hf_model(module)
    ms = {"ours (fused step)": [], "reference step": [], "transformers generate": []}
    _decoder_ms(module, True, 2)  # numba's compilation / cache load, outside the timing
    for _ in range(rounds):
        ms["ours (fused step)"].append(_decoder_ms(module, True, tokens))
        ms["reference step"].append(_decoder_ms(module, False, max(3, tokens // 4)))
        ms["transformers generate"].append(_hf_ms(hf, max(3, tokens // 4)))
    params = sum(p.numel() for p in module.parameters())
    weight_bytes = 4 * params
    cfg = module.config
    cached = weight_bytes <= last_level_cache_bytes()  # then memory bandwidth does not bound a step
    return {"shape": label, "d_model": cfg.d_model, "weights_fit_in_cache": cached, "n_layer": cfg.n_layer, "vocab": cfg.padded_vocab_size,
            "parameters": params, "weight_bytes": weight_bytes, "rounds": rounds, "tokens_per_round": tokens,
            "ms_per_token": {k: statistics.median(v) for k, v in ms.items()}, "ms_all_rounds": ms,
            "floor_bandwidth_ms": 1e3 * weight_bytes / bandwidth, "floor_flops_ms": 1e3 * step_flops(cfg) / peak,
            "llama_cpp_ms": LLAMA_CPP_MS.get(label)}


def measure(zoo_module, rounds: int = 5) -> dict:
    from robustbench_bytes.models.mamba import MambaConfig, MambaLM

    bandwidth, peak = streaming_bandwidth(), sgemm_peak()
    torch.manual_seed(0)
    big = MambaLM(MambaConfig(d_model=768, n_layer=24, vocab_size=50277)).eval()  # mamba-130m's config
    shapes = [measure_shape("zoo", zoo_module, rounds, 200, bandwidth, peak),
              measure_shape("mamba-130m", big, rounds, 12, bandwidth, peak)]
    return {"bandwidth_gb_s": bandwidth / 1e9, "sgemm_gflop_s": peak / 1e9, "shapes": shapes,
            "llama_cpp_date": LLAMA_CPP_DATE}


def markdown(r: dict) -> list[str]:
    lines = ["### Plain decoding, ms per token (1 thread)", "",
             f"Same weights, one process, the decoders interleaved round by round ({r['shapes'][0]['rounds']} rounds; "
             "medians). Floors measured in the same run: weights / streaming bandwidth "
             f"({r['bandwidth_gb_s']:.1f} GB/s, one thread reading a 512 MB array: the faster of numpy's sum and the "
             "fused step's row-dot loop) and FLOPs / single-thread sgemm "
             f"peak ({r['sgemm_gflop_s']:.0f} GFLOP/s). llama.cpp: `llama-bench tg128`, f32 GGUF of the same shapes, "
             f"1 thread, measured on this machine by the project on {r['llama_cpp_date']} (quoted, not rerun here). "
             "'ours vs floor' uses the FLOPs floor where the weights fit in the last-level cache (the zoo's model: "
             "a step then reads them from cache, not from memory), else the larger of the two.",
             "", "| shape | parameters | ours (fused step) | reference step | transformers generate | llama.cpp "
             f"({r['llama_cpp_date']}) | floor: bytes / bandwidth | floor: FLOPs / peak | ours vs reference | ours vs "
             "transformers | ours vs llama.cpp | ours vs floor |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in r["shapes"]:
        m = s["ms_per_token"]
        ours = m["ours (fused step)"]
        floor = s["floor_flops_ms"] if s["weights_fit_in_cache"] else max(s["floor_bandwidth_ms"], s["floor_flops_ms"])
        llama = s["llama_cpp_ms"]
        lines.append(
            f"| {s['shape']} (d_model {s['d_model']}, {s['n_layer']} layers, vocab {s['vocab']:,}) | "
            f"{s['parameters']:,} | {ours:.3f} | {m['reference step']:.2f} | {m['transformers generate']:.2f} | "
            f"{llama if llama is not None else 'n/a'} | {s['floor_bandwidth_ms']:.3f} | {s['floor_flops_ms']:.3f} | "
            f"{m['reference step'] / ours:.1f}x faster | {m['transformers generate'] / ours:.1f}x faster | "
            + (f"{llama / ours:.2f}x ({'at or below' if ours <= llama else 'above'} llama.cpp) | " if llama else "n/a | ")
            + f"{ours / floor:.2f}x the floor |")
    return lines
