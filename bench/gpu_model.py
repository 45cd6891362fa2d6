"""GPU benchmark of the byte Mamba: a MambaByte-972M-shaped random model scoring 1 MB in bf16 autocast.

`run(device)` returns a dict (bench/gpu.py merges it into the GPU results); run this file directly to print it.
Model-FLOPs utilisation counts 2 x parameters FLOPs per byte (the matrix products of a forward pass) against
the H200's dense bf16 peak (989 TFLOP/s). Two layouts of the same megabyte are timed: one 1 MB document in
chunks with carried state (batch 1), and 8 documents of 128 KB scored as one batch.
"""

from __future__ import annotations

import json
import time

H200_BF16_DENSE_FLOPS = 989e12
MAMBABYTE_972M = {"d_model": 1792, "n_layer": 48, "vocab_size": 256, "ssm_cfg": {}, "rms_norm": False,
                  "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8,
                  "tie_embeddings": False}


def _text(n: int) -> bytes:
    try:
        from robustbench_bytes.data import load_corpus

        data = "\n".join(load_corpus("kjv").documents).encode("utf-8")
    except Exception:  # the corpus is a convenience; random bytes give the same speed
        import torch

        data = bytes(torch.randint(32, 127, (n,), generator=torch.Generator().manual_seed(0)).tolist())
    while len(data) < n:
        data += data
    return data[:n]


def _size(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n / 2**10:g} KB"


def _score(model, ids, chunk: int) -> float:
    """Summed NLL of ids[:, 1:] (b, L) chunk by chunk with carried state, bf16 autocast, fp32 log-softmax."""
    import torch
    import torch.nn.functional as F

    inputs, targets = ids[:, :-1], ids[:, 1:]
    total = torch.zeros((), dtype=torch.float64, device=ids.device)
    state = None
    for start in range(0, inputs.shape[1], chunk):
        with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=ids.device.type == "cuda"):
            logits, state = model(inputs[:, start:start + chunk], state)
        total += F.cross_entropy(logits.flatten(0, 1).float(), targets[:, start:start + chunk].flatten(),
                                 reduction="sum").double()
    return float(total)


def run(device="cuda", config: dict | None = None, total_bytes: int = 1 << 20, chunk: int = 8192,
        batch: int = 8, peak_flops: float = H200_BF16_DENSE_FLOPS) -> dict:
    import torch

    from robustbench_bytes.models.mamba import MambaConfig, MambaLM

    device = torch.device(device)
    cfg = MambaConfig.from_dict(config or MAMBABYTE_972M)
    torch.manual_seed(0)
    with torch.device(device):
        model = MambaLM(cfg).eval()
    params = model.num_parameters()
    data = torch.tensor(list(_text(total_bytes + batch)), dtype=torch.long, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    layouts = {f"1 document x {_size(total_bytes)}, batch 1": data[: total_bytes + 1][None],
               f"{batch} documents x {_size(total_bytes // batch)}, one batch":
                   data[: (total_bytes // batch + 1) * batch].view(batch, -1)}
    out = {"model": "MambaByte-972M-shaped, random weights", "config": cfg.to_dict(), "parameters": params,
           "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
           "dtype": "bfloat16 autocast (scan state fp32)" if device.type == "cuda" else "float32",
           "chunk": chunk, "peak_flops": peak_flops, "layouts": {}}
    with torch.inference_mode():
        _score(model, data[: 2 * 256 + 1][None], 256)  # warm-up: kernel compilation
        _score(model, data[: 2 * 256 + 2].view(2, -1), 256)
        for name, ids in layouts.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            sync()
            t0 = time.perf_counter()
            nll = _score(model, ids, chunk)
            sync()
            seconds = time.perf_counter() - t0
            scored = ids.shape[0] * (ids.shape[1] - 1)
            rate = scored / seconds
            out["layouts"][name] = {
                "bytes": scored, "seconds": seconds, "bytes_per_second": rate,
                "mfu": rate * 2 * params / peak_flops, "bits_per_byte": nll / scored / 0.6931471805599453,
                "peak_memory_gb": (torch.cuda.max_memory_allocated(device) / 2**30) if device.type == "cuda"
                else None}
    best = max(out["layouts"].values(), key=lambda r: r["bytes_per_second"])
    out["bytes_per_second"] = best["bytes_per_second"]
    out["mfu"] = best["mfu"]
    return out


if __name__ == "__main__":
    import torch

    print(json.dumps(run("cuda" if torch.cuda.is_available() else "cpu") if torch.cuda.is_available()
                     else {"skipped": "no CUDA device"}, indent=2))
