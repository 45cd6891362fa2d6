"""`make bench-gpu`: the Triton selective scan on a CUDA GPU (written for an H200).

    .venv/bin/python bench/gpu.py              # on a machine with CUDA
    .venv/bin/python bench/gpu.py --interpret  # no GPU: run the same code at a tiny shape in Triton's
                                               # CPU interpreter (proves the script runs; no timing value)

1. Correctness on the device: tests/support/triton_check.py's cases, and the Triton scan against the float32
   reference at the benchmark shape (mamba_ssm's fp32 tolerance).
2. Speed at b*L = 16k tokens, d = 3584 (MambaByte-972M's d_inner), n = 16, float32 and bfloat16 inputs,
   over a few block-size configurations: achieved bandwidth = bytes of u, delta, z, B, C read and out
   written, over the kernel's time, against a device-to-device copy measured in the same run. Goal >= 60%.
3. If bench/gpu_model.py exists (the models part), its run(device) -> dict is merged under "model".
4. Decoding at MambaByte-972M's shape (generation_part): plain byte decoding, a verification chunk of L bytes
   against L steps, a Mamba-110M-shaped subword drafter's step, and speculative decoding end to end; under
   "generation".
5. The distributed path on N GPUs (distributed_part): `torchrun --nproc-per-node N -m robustbench_bytes run` against
   the same run on one GPU (speed-up, and each cell's seconds outside scoring as in bench/bench_distributed.py);
   only with torch.cuda.device_count() >= 2, else recorded as pending with the reason; under "distributed".
Without CUDA (and without --interpret) it prints "no CUDA device", writes bench/results/gpu.json with
status "pending" and exits 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # support/: the scan inputs and Triton checks the tests use
RESULTS = ROOT / "bench" / "results"
COMMAND = ".venv/bin/python bench/gpu.py"
GOAL = 0.60
FULL = dict(b=2, d=3584, n=16, L=8192)  # 16,384 tokens
TINY = dict(b=1, d=16, n=4, L=24)
CONFIGS = [dict(block_d=bd, block_l=bl, num_warps=w) for bd, bl, w in
           [(4, 32, 4), (8, 32, 4), (8, 64, 4), (8, 64, 8), (16, 32, 4), (16, 32, 8), (16, 64, 8), (32, 16, 4)]]


def _now():
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def timer(fn, device, repeats):
    """Median seconds of fn() over repeats, after one warm-up call (CUDA events on a GPU)."""
    import torch

    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def copy_bandwidth(device, nbytes, repeats):
    import torch

    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    seconds = timer(lambda: dst.copy_(src), device, repeats)
    return {"bytes": 2 * src.numel() * 4, "seconds": seconds, "gb_per_s": 2 * src.numel() * 4 / seconds / 1e9}


def scan_inputs_on(device, shape, dtype):
    from support.scan_inputs import scan_inputs

    kw = scan_inputs(shape["b"], shape["d"], shape["n"], shape["L"], groups=0,
                     options=("D", "z", "delta_bias", "delta_softplus"), seed=0)
    kw.pop("initial_state")
    out = {}
    for k, v in kw.items():
        if isinstance(v, __import__("torch").Tensor):
            v = v.to(device)
            if k in ("u", "delta", "z", "B", "C"):
                v = v.to(dtype)
        out[k] = v
    return out


def scan_bytes(shape, dtype):
    import torch

    size = torch.empty(0, dtype=dtype).element_size()
    b, d, n, L = shape["b"], shape["d"], shape["n"], shape["L"]
    return (4 * b * d * L + 2 * b * n * L) * size  # u, delta, z read, out written; B, C read


def check_at_shape(device, shape):
    import torch

    from robustbench_bytes.kernels.reference import selective_scan_ref
    from robustbench_bytes.kernels.triton_scan import selective_scan_triton

    kw = scan_inputs_on(device, shape, torch.float32)
    with torch.no_grad():
        ref = selective_scan_ref(**kw)
        out = selective_scan_triton(**kw)
    err = (out - ref).abs()
    ok = bool((err <= 2e-3 + 6e-4 * ref.abs()).all())
    return {"shape": shape, "ok": ok, "max_abs_err": float(err.max()), "max_abs_ref": float(ref.abs().max())}


def time_scan(device, shape, repeats, configs):
    import torch

    from robustbench_bytes.kernels.triton_scan import selective_scan_triton

    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        kw = scan_inputs_on(device, shape, dtype)
        nbytes = scan_bytes(shape, dtype)
        for cfg in configs:
            try:
                seconds = timer(lambda: selective_scan_triton(**kw, **cfg), device, repeats)
            except Exception as exc:  # a configuration the compiler rejects (registers, shared memory)
                rows.append({"dtype": str(dtype)[6:], **cfg, "error": f"{type(exc).__name__}: {exc}"[:300]})
                continue
            tokens = shape["b"] * shape["L"]
            rows.append({"dtype": str(dtype)[6:], **cfg, "seconds": seconds, "bytes": nbytes,
                         "gb_per_s": nbytes / seconds / 1e9, "tokens_per_s": tokens / seconds,
                         "gupdates_per_s": tokens * shape["d"] * shape["n"] / seconds / 1e9})
            print(f"  {rows[-1]['dtype']:8s} {cfg}: {seconds * 1e3:.3f} ms, {rows[-1]['gb_per_s']:.0f} GB/s",
                  file=sys.stderr, flush=True)
    return rows


def model_part(device):
    path = Path(__file__).resolve().parent / "gpu_model.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("gpu_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.run(device)
    except Exception as exc:  # keep the kernel numbers even if the model part fails
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def interpreter_smoke():
    """This script with --interpret in a subprocess: (its report or None, return code)."""
    proc = subprocess.run([sys.executable, __file__, "--interpret"], capture_output=True, text=True, cwd=ROOT)
    try:
        return json.loads(proc.stdout), proc.returncode
    except json.JSONDecodeError:
        return None, proc.returncode


# ---- decoding (robustbench generate) at MambaByte-972M's shape ------------------------------------------------

GEN_VERIFIER = {"d_model": 1792, "n_layer": 48, "vocab_size": 256, "ssm_cfg": {}, "rms_norm": False,
                "residual_in_fp32": True, "fused_add_norm": True, "pad_vocab_size_multiple": 8,
                "tie_embeddings": False}
GEN_DRAFTER = {"d_model": 768, "n_layer": 24, "ssm_cfg": {}, "rms_norm": True, "residual_in_fp32": True,
               "fused_add_norm": True, "pad_vocab_size_multiple": 8}  # Mamba-110M's shape; vocab: the tokenizer's


def generation_part(device, new_bytes: int = 512, chunks=(1, 2, 4, 8, 16, 32), repeats: int = 10):
    """Decoding with random weights at MambaByte-972M's shape (CUDA only; None elsewhere), float32 weights:
    plain byte decoding through robustbench_bytes.generation (one step per byte), the time of a verification chunk
    of L bytes resumed from a saved state against L single steps, the step of a Mamba-110M-shaped subword
    drafter, and speculative decoding end to end. Random models never agree, so the measured acceptance is ~0
    and the end-to-end speculative figure is a floor; `full_acceptance_bytes_per_second` is the ceiling
    (every drafted byte accepted: draft_tokens drafter steps + one chunk per round, 4 bytes per token)."""
    if device.type != "cuda":
        return None
    import torch

    from robustbench_bytes.generation import generate
    from robustbench_bytes.generation.decoders import make_decoder
    from robustbench_bytes.models.base import LoadedModel, count_parameters
    from robustbench_bytes.models.mamba import MambaConfig, MambaLM
    from robustbench_bytes.models.tokenization import ByteTokenizer, SubwordTokenizer
    from robustbench_bytes.training.data import train_bpe

    def loaded(module, tokenizer, level, name):
        return LoadedModel(name=name, level=level, architecture="mamba", module=module, tokenizer=tokenizer,
                           device=device, checkpoint_sha256="", source=name, parameters=count_parameters(module))

    def seconds(fn):
        fn()
        torch.cuda.synchronize(device)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t)
        return sorted(times)[len(times) // 2]

    torch.manual_seed(0)
    with torch.device(device):
        verifier = MambaLM(MambaConfig.from_dict(GEN_VERIFIER)).eval()
    text = ("In the beginning God created the heaven and the earth. And the earth was without form, and void; "
            "and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters.")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(train_bpe([text] * 8, 512))
    sub = SubwordTokenizer(tok, eos_token_id=tok.token_to_id("<|endoftext|>"))
    with torch.device(device):
        drafter = MambaLM(MambaConfig.from_dict(dict(GEN_DRAFTER, vocab_size=sub.vocab_size))).eval()
    v, d = loaded(verifier, ByteTokenizer(), "byte", "MambaByte-972M-shaped"), loaded(drafter, sub, "subword",
                                                                                      "Mamba-110M-shaped")
    out = {"verifier": GEN_VERIFIER, "verifier_parameters": v.parameters, "drafter": dict(GEN_DRAFTER, vocab_size=sub.vocab_size),
           "drafter_parameters": d.parameters, "device": torch.cuda.get_device_name(device), "dtype": "float32"}
    prompt = text[:64]
    generate(v, prompt, max_bytes=16)  # warm-up: Triton compilation
    t = time.perf_counter()
    g = generate(v, prompt, max_bytes=new_bytes)
    torch.cuda.synchronize(device)
    wall = time.perf_counter() - t
    out["plain"] = {"bytes": g.bytes, "seconds": wall, "bytes_per_second": g.bytes / wall}
    with torch.inference_mode():
        dec = make_decoder(v)
        dec.prefill(list(prompt.encode()))
        saved = dec.save()
        step = seconds(lambda: (dec.restore(saved), dec.step(101)))
        out["verifier_step_seconds"] = step
        out["chunks"] = []
        for L in chunks:
            ids = list(text.encode()[64:64 + L])
            chunk = seconds(lambda: (dec.restore(saved), dec.feed(ids)))
            out["chunks"].append({"bytes": L, "chunk_seconds": chunk, "steps_seconds": L * step,
                                  "chunk_vs_steps": chunk / (L * step)})
        ddec = make_decoder(d)
        ddec.prefill([0] + sub.encode(prompt))
        dsaved = ddec.save()
        out["drafter_step_seconds"] = seconds(lambda: (ddec.restore(dsaved), ddec.step(5)))
    k, per_token = 3, 4
    chunk_k = next((c["chunk_seconds"] for c in out["chunks"] if c["bytes"] >= k * per_token), out["chunks"][-1]["chunk_seconds"])
    out["full_acceptance_bytes_per_second"] = k * per_token / (k * out["drafter_step_seconds"] + chunk_k)
    generate(v, prompt, max_bytes=16, draft=d)
    t = time.perf_counter()
    g = generate(v, prompt, max_bytes=new_bytes // 4, draft=d)
    torch.cuda.synchronize(device)
    wall = time.perf_counter() - t
    out["speculative_random"] = {"bytes": g.bytes, "seconds": wall, "bytes_per_second": g.bytes / wall,
                                 **{key: g.to_json().get(key) for key in ("drafts", "acceptance_rate", "seconds_by_part")}}
    out["plain_vs_speculative_ceiling"] = out["full_acceptance_bytes_per_second"] / out["plain"]["bytes_per_second"]
    return out


def generation_section(device):
    try:
        return generation_part(device)
    except Exception as exc:  # keep the kernel numbers even if the decoding part fails
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def render_generation(gen):
    """The decoding part (generation_part)."""
    if not gen:
        return []
    if "error" in gen:
        return [f"Decoding at MambaByte-972M's shape: FAILED ({gen['error']}).", ""]
    lines = [f"Decoding (`robustbench generate`), random weights, {gen['dtype']}: verifier MambaByte-972M-shaped "
             f"({gen['verifier_parameters'] / 1e6:.0f}M), drafter Mamba-110M-shaped ({gen['drafter_parameters'] / 1e6:.0f}M).",
             "", "| measure | value |", "|---|---:|",
             f"| plain byte decoding, bytes/s | {gen['plain']['bytes_per_second']:,.0f} |",
             f"| verifier step, ms | {gen['verifier_step_seconds'] * 1e3:.2f} |",
             f"| drafter step, ms | {gen['drafter_step_seconds'] * 1e3:.2f} |"]
    for c in gen["chunks"]:
        lines.append(f"| verification chunk of {c['bytes']} bytes, ms (x the time of {c['bytes']} steps) | "
                     f"{c['chunk_seconds'] * 1e3:.2f} ({c['chunk_vs_steps']:.2f}) |")
    lines += [f"| speculative ceiling (every drafted byte accepted, 3 tokens of 4 bytes), bytes/s | "
              f"{gen['full_acceptance_bytes_per_second']:,.0f} ({gen['plain_vs_speculative_ceiling']:.2f}x plain) |",
              f"| speculative end to end, random weights (acceptance {100 * (gen['speculative_random']['acceptance_rate'] or 0):.0f}%), "
              f"bytes/s | {gen['speculative_random']['bytes_per_second']:,.0f} |", ""]
    return lines


DISTRIBUTED_RUN = ["--model", "mambabyte-kjv-shakespeare", "--corpus", "kjv:test", "--noise", "drop:p=0.1", "--noise",
                   "antspeak", "--device", "cuda", "--batch-size", "8", "--quiet"]


def distributed_part() -> dict:
    """The distributed path on every GPU of this node against one GPU: the same grid (the zoo's byte Mamba on
    kjv:test, clean + 2 noises) run by `torchrun --nproc-per-node N` and by `--nproc-per-node 1`; wall seconds of
    each launch, the speed-up, and per cell the seconds outside scoring as a fraction (bench/bench_distributed.py's
    definition). Pending (with the reason) on fewer than 2 GPUs."""
    import tempfile

    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n < 2:
        return {"status": "pending", "reason": f"needs >= 2 CUDA devices; this machine has {n}"}
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_distributed import cell_overheads, free_port

    def launch(ranks: int, out: Path) -> dict:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks),
                   "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
                   "-m", "robustbench_bytes", "run", *DISTRIBUTED_RUN, "--out", str(out)]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                              env=dict(os.environ, MPLCONFIGDIR=str(out.parent / "mpl")))
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            return {"ranks": ranks, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                    f"exit {done.returncode}"}
        manifest = json.loads((out / "manifest.json").read_text())
        results = json.loads((out / "results.json").read_text())
        return {"ranks": ranks, "launch_seconds": seconds, "cells": cell_overheads(manifest),
                "bits_per_clean_byte": {r["cell"]: r["bits_per_clean_byte"] for r in results}}

    with tempfile.TemporaryDirectory() as tmp:
        one, many = launch(1, Path(tmp) / "one"), launch(n, Path(tmp) / "many")
    report = {"status": "measured", "gpus": n, "run": " ".join(DISTRIBUTED_RUN), "one": one, "many": many}
    if "error" not in one and "error" not in many:
        report["speedup"] = one["launch_seconds"] / many["launch_seconds"]
        report["max_bpcb_difference"] = max(abs(one["bits_per_clean_byte"][c] - many["bits_per_clean_byte"][c])
                                            for c in one["bits_per_clean_byte"])
    return report


def render_distributed(dist):
    if not dist:
        return []
    if dist["status"] == "pending":
        return [f"Distributed path on N GPUs: **pending** ({dist['reason']}).", ""]
    lines = [f"Distributed path: `torchrun --nproc-per-node {dist['gpus']} -m robustbench_bytes run {dist['run']}` "
             "against `--nproc-per-node 1`.", ""]
    for side in ("one", "many"):
        if "error" in dist[side]:
            lines.append(f"{dist[side]['ranks']} rank(s): FAILED: {dist[side]['error']}")
    if "speedup" not in dist:
        return lines + [""]
    lines += [f"Launch wall time: {dist['one']['launch_seconds']:.1f} s on 1 GPU, {dist['many']['launch_seconds']:.1f} s "
              f"on {dist['gpus']} ({dist['speedup']:.2f}x); largest bits/clean byte difference "
              f"{dist['max_bpcb_difference']:.1e}.", "",
              "| cell | wall s | scoring s (slowest rank) | overhead | goal (< 2%) |", "|---|---:|---:|---:|---|"]
    for r in dist["many"]["cells"]:
        lines.append(f"| `{r['cell']}` | {r['wall_seconds']:.2f} | {r['scoring_seconds']:.2f} | "
                     f"{r['overhead_fraction']:.1%} | {'met' if r['overhead_fraction'] < 0.02 else 'MISSED'} |")
    return lines + [""]


def run_device(device, shape, repeats, configs, with_model):
    import torch

    from support.triton_check import check

    report = {"status": "measured", "device": torch.cuda.get_device_name(device) if device.type == "cuda"
              else "cpu (Triton interpreter)", "shape": shape}
    report["checks"] = check(str(device))
    report["check_at_shape"] = check_at_shape(device, shape)
    report["scan"] = time_scan(device, shape, repeats, configs)
    report["copy"] = copy_bandwidth(device, max(r.get("bytes", 0) for r in report["scan"]) or 1 << 20, repeats)
    for r in report["scan"]:
        if "gb_per_s" in r:
            r["fraction_of_copy"] = r["gb_per_s"] / report["copy"]["gb_per_s"]
    if with_model:
        model = model_part(device)
        if model is not None:
            report["model"] = model
        generation = generation_section(device)
        if generation is not None:
            report["generation"] = generation
        report["distributed"] = distributed_part()
    return report


def render_model(model):
    """The model part (bench/gpu_model.py): bytes/s and model-FLOPs utilisation per batch layout."""
    if not model:
        return []
    lines = [f"Model: {model['model']}, {model['parameters'] / 1e6:.0f}M parameters, {model['dtype']}, "
             f"chunks of {model['chunk']} bytes; MFU = bytes/s x 2 x parameters / {model['peak_flops'] / 1e12:.0f} "
             "TFLOP/s.", "", "| layout | bytes | bytes/s | MFU | peak memory GB | goal (>= 40% MFU) |",
             "|---|---:|---:|---:|---:|---|"]
    for name, r in model["layouts"].items():
        memory = "" if r["peak_memory_gb"] is None else f"{r['peak_memory_gb']:.1f}"
        lines.append(f"| {name} | {r['bytes']:,} | {r['bytes_per_second']:,.0f} | {100 * r['mfu']:.1f}% | {memory} | "
                     f"{'met' if r['mfu'] >= 0.4 else 'MISSED'} |")
    return lines + [""]


def render(report):
    lines = ["## Selective scan (GPU, Triton)", ""]
    if report["status"] == "pending":
        lines += [f"**Pending**: {report['reason']}", ""]
        smoke = report.get("interpreter_smoke") or {}
        inter = smoke.get("checks") or []
        if inter:
            passed = sum(1 for r in inter if r.get("ok"))
            ran = "ran end to end" if report.get("interpreter_smoke_rc") == 0 else "FAILED"
            lines += [f"Meanwhile, in Triton's CPU interpreter (`TRITON_INTERPRET=1`, `{COMMAND} --interpret`), the "
                      f"Triton kernels pass {passed}/{len(inter)} correctness cases against the float32 reference "
                      "(the same cases run in the test suite), and this script's checking and timing code "
                      f"{ran} at b, d, n, L = {tuple(TINY.values())} (times meaningless there).", ""]
        lines += ["| part | shape | fp32 | bf16 | goal |", "|---|---|---|---|---|",
                  "| scan bandwidth vs device copy | b*L = 16k, d = 3584, n = 16 | pending | pending | >= 60% |",
                  "| MambaByte-972M-shaped model, bytes/s and MFU | d_model 1792, 48 layers, 1 MB | – | pending "
                  "| >= 40% MFU |",
                  "| MambaByte-972M-shaped decoding: plain vs speculative bytes/s, chunk vs steps | d_model 1792, "
                  "48 layers, random weights | pending | – | speculative >= 2.6x plain |",
                  "| distributed path on N GPUs (torchrun, NCCL): speed-up over 1 GPU, seconds outside scoring "
                  "per cell | the zoo's byte Mamba on kjv:test, clean + 2 noises | pending (needs >= 2 GPUs) | – "
                  "| overhead < 2% per cell |", ""]
        lines += render_distributed(report.get("distributed"))
    else:
        sh = report["shape"]
        best = {}
        for r in report["scan"]:
            if "gb_per_s" in r and (r["dtype"] not in best or r["gb_per_s"] > best[r["dtype"]]["gb_per_s"]):
                best[r["dtype"]] = r
        checks = report["checks"]
        lines += [f"Device: {report['device']}. Checks against the float32 reference: "
                  f"{sum(c['ok'] for c in checks)}/{len(checks)} small cases; at the benchmark shape max |err| "
                  f"{report['check_at_shape']['max_abs_err']:.2e} ({'ok' if report['check_at_shape']['ok'] else 'FAILED'}).",
                  f"Shape b={sh['b']}, L={sh['L']} (b*L = {sh['b'] * sh['L']:,} tokens), d={sh['d']}, n={sh['n']}. "
                  f"Bytes = u, delta, z read + out written + B, C read. Device-to-device copy in the same run: "
                  f"{report['copy']['gb_per_s']:.0f} GB/s (read + write).", "",
                  "| dtype | best config | ms | GB/s | % of copy | G state-updates/s | goal (>= 60%) |",
                  "|---|---|---:|---:|---:|---:|---|"]
        for dtype, r in best.items():
            cfg = f"block_d={r['block_d']}, block_l={r['block_l']}, warps={r['num_warps']}"
            lines.append(f"| {dtype} | {cfg} | {r['seconds'] * 1e3:.3f} | {r['gb_per_s']:.0f} | "
                         f"{100 * r['fraction_of_copy']:.0f}% | {r['gupdates_per_s']:.0f} | "
                         f"{'met' if r['fraction_of_copy'] >= GOAL else 'MISSED'} |")
        lines.append("")
        lines += render_model(report.get("model"))
        lines += render_generation(report.get("generation"))
        lines += render_distributed(report.get("distributed"))
    lines.append(f"Machine: {report['machine']}. Command: `{report['command']}`. Date: {report['date']}.")
    return "\n".join(lines) + "\n"


def write(report, suffix=""):
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name, text in ((f"gpu{suffix}.json", json.dumps(report, indent=1) + "\n"), (f"gpu{suffix}.md", render(report))):
        tmp = RESULTS / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(RESULTS / name)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interpret", action="store_true",
                        help="no GPU: run the benchmark code at a tiny shape in Triton's CPU interpreter")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per configuration (median)")
    parser.add_argument("--no-model", action="store_true", help="skip bench/gpu_model.py")
    args = parser.parse_args(argv)
    base = {"command": COMMAND + (" --interpret" if args.interpret else ""), "date": _now(),
            "machine": f"{platform.node()}, Python {platform.python_version()}"}

    if args.interpret:
        if os.environ.get("TRITON_INTERPRET") != "1":  # must be set before triton is imported: re-run
            env = dict(os.environ, TRITON_INTERPRET="1")
            return subprocess.call([sys.executable, __file__, *argv], env=env, cwd=ROOT)
        import torch

        report = run_device(torch.device("cpu"), TINY, 2, CONFIGS[:2], with_model=False)
        print(json.dumps(report, indent=1))
        return 0 if all(c["ok"] for c in report["checks"]) and report["check_at_shape"]["ok"] else 1

    import torch

    if not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA device: the GPU benchmark stays pending "
              "(checking the Triton kernels in the interpreter instead)", file=sys.stderr)
        smoke, rc = interpreter_smoke()
        report = dict(base, status="pending", reason="no CUDA device on the machine that ran `make bench-gpu` "
                      f"({platform.node()}); run it on an H200 to fill this row",
                      interpreter_smoke=smoke, interpreter_smoke_rc=rc, distributed=distributed_part())
        previous = RESULTS / "gpu.json"
        if previous.exists() and json.loads(previous.read_text()).get("status") == "measured":
            print("bench/gpu.py: keeping the measured bench/results/gpu.json", file=sys.stderr)
            return 0
        write(report)
        print(render(report))
        return 0

    device = torch.device("cuda")
    report = dict(base, **run_device(device, FULL, args.repeats, CONFIGS, with_model=not args.no_model))
    write(report)
    print(render(report))
    return 0 if report["check_at_shape"]["ok"] and all(c["ok"] for c in report["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
