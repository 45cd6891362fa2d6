"""The built-in zoo: how each model was trained (bytes, sequence length, parameters, wall and CPU time, validation
and test bits per byte, from its config.json) and how it scores on the default evaluation slice, clean and
under antspeak (bits per byte, word perplexity, scoring throughput), with the acceptance checks: the byte
model's clean bits per byte <= 2.5, equal training bytes (within one sequence), and whether its antspeak
word-PPL increase is below every subword model's; where the byte model's antspeak bits go, beside the
same breakdown for the earlier KJV-only zoo (bench/results/zoo-kjv-only.json).

    .venv/bin/python bench/bench_zoo.py

Writes bench/results/zoo.json and bench/results/zoo.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import torch

from robustbench_bytes.data.builtin import DEFAULT_CORPUS
from robustbench_bytes.data import load_corpus
from robustbench_bytes.models import ZOO_DIR, load_model, zoo_names
from robustbench_bytes.scoring import score_corpus

RESULTS = Path(__file__).resolve().parent / "results"
EARLIER = RESULTS / "zoo-kjv-only.json"  # the zoo before the fair retraining, measured 2026-11-30
COMMAND = ".venv/bin/python bench/bench_zoo.py"
NOISE = "antspeak"


def training_record(name: str) -> dict:
    directory = ZOO_DIR / name
    meta = json.loads((directory / "config.json").read_text())["robustbench"]
    size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    keys = ("level", "architecture", "parameters", "trained_steps", "tokens_seen", "train_bytes",
            "train_length_bytes", "train_length_tokens", "train_data", "train_seconds", "train_cpu_seconds",
            "threads", "validation_bits_per_byte", "test_bits_per_byte", "command")
    return {k: meta.get(k) for k in keys} | {"size_bytes": size}


def score_record(name: str, corpus) -> dict:
    model = load_model(name)
    cells = {}
    for noise in ("clean", NOISE):
        w, c = time.perf_counter(), time.process_time()
        cell = score_corpus(model, corpus, noise=noise, progress=False).result
        cells[noise] = {k: getattr(cell, k) for k in ("bits_per_byte", "bits_per_clean_byte", "word_perplexity",
                                                      "bytes", "tokens")}
        cells[noise].update(wall_seconds=round(time.perf_counter() - w, 2),
                            cpu_seconds=round(time.process_time() - c, 2))
    clean, noisy = cells["clean"]["word_perplexity"], cells[NOISE]["word_perplexity"]
    return {"cells": cells, "word_ppl_increase": noisy - clean, "word_ppl_ratio": noisy / clean}


@torch.no_grad()
def antspeak_breakdown(name: str, corpus) -> dict:
    """Where a byte model's antspeak bits go: mean bits on the inserted spaces, on the (uppercased) letters,
    and by quarter of each document (flat quarters = no in-context adaptation to the pattern)."""
    import math

    import torch.nn.functional as F

    from robustbench_bytes import noise

    model = load_model(name)
    module, prefix = model.module, list(model.tokenizer.prefix_ids)
    sums = {"space": [0.0, 0], "upper": [0.0, 0], "other": [0.0, 0]}
    quarters = [[0.0, 0] for _ in range(4)]
    for i, text in enumerate(noise.apply_corpus(corpus.documents, NOISE, seed=0)):
        ids = torch.tensor(prefix + list(text.encode("utf-8")))
        logits, _ = module(ids[None, :-1])
        bits = (F.cross_entropy(logits[0, :, :256], ids[1:], reduction="none") / math.log(2)).tolist()
        for j, (b, t) in enumerate(zip(bits, ids[1:].tolist())):
            kind = "space" if t == 32 else "upper" if 65 <= t <= 90 else "other"
            sums[kind][0] += b
            sums[kind][1] += 1
            q = quarters[min(3, 4 * j // len(bits))]
            q[0] += b
            q[1] += 1
    return {"bits_per_space": sums["space"][0] / max(1, sums["space"][1]),
            "bits_per_upper": sums["upper"][0] / max(1, sums["upper"][1]),
            "bits_per_other": sums["other"][0] / max(1, sums["other"][1]),
            "bits_per_byte_by_quarter": [q[0] / max(1, q[1]) for q in quarters]}


def main():
    torch.set_num_threads(2)
    corpus = load_corpus(DEFAULT_CORPUS)
    names = zoo_names()
    models = {}
    for name in names:
        models[name] = training_record(name) | score_record(name, corpus)
    byte = [n for n in names if models[n]["level"] == "byte"]
    subword = [n for n in names if models[n]["level"] == "subword"]
    acceptance = {}
    seen = [models[n]["train_bytes"] for n in names]
    longest = max(models[n]["train_length_bytes"] for n in names)
    for b in byte:
        models[b]["antspeak_breakdown"] = antspeak_breakdown(b, corpus)
        acceptance[b] = {
            "training_bytes_equal_within_one_sequence": max(seen) - min(seen) <= longest,
            "clean_bits_per_byte": models[b]["cells"]["clean"]["bits_per_byte"],
            "clean_bpb_at_most_2.5": models[b]["cells"]["clean"]["bits_per_byte"] <= 2.5,
            "antspeak_increase_below_every_subword": all(
                models[b]["word_ppl_increase"] < models[s]["word_ppl_increase"] for s in subword),
        }
    record = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, torch {torch.__version__}",
        "command": COMMAND, "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "corpus": DEFAULT_CORPUS, "corpus_bytes": corpus.bytes, "documents": len(corpus.documents),
        "noise": NOISE, "models": models, "acceptance": acceptance,
        "earlier": json.loads(EARLIER.read_text()) if EARLIER.is_file() else None,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "zoo.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / "zoo.md").write_text(markdown(record))
    print(markdown(record))


def markdown(r: dict) -> str:
    def fmt_ppl(x):
        return f"{x:,.1f}" if x < 1e6 else f"{x:.3g}"

    def tests(m):
        t = m["test_bits_per_byte"]
        return ", ".join(f"{k} {v:.3f}" for k, v in t.items()) if isinstance(t, dict) else f"{t:.3f}"

    data = ", ".join(next(iter(r["models"].values()))["train_data"] or [])
    lines = ["## The zoo", "",
             f"Trained with `robustbench train --config configs/zoo/NAME.json --out robustbench_bytes/zoo/NAME` on "
             f"{data}: every model on the same UTF-8 bytes of training targets, in sequences of the same number of "
             f"bytes (the subword models' token length is that over the training stream's bytes per token). "
             f"Training time is as recorded in each model's config.json (the 2-core machine was shared with other "
             f"jobs, so CPU time is the comparable figure). Scores: `{r['corpus']}` ({r['documents']} documents, "
             f"{r['corpus_bytes']:,} bytes), clean and `{r['noise']}`; word-PPL increase = antspeak word "
             f"perplexity - clean word perplexity (MambaByte's table); `ratio` = antspeak / clean.", "",
             "| model | level | params | training bytes | sequence (bytes / tokens) | steps | train wall min | "
             "train CPU min | val bpb | test bpb | disk MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for name, m in r["models"].items():
        lines.append(f"| {name} | {m['level']} {m['architecture']} | {m['parameters']:,} | {m['train_bytes']:,} | "
                     f"{m['train_length_bytes']:,} / {m['train_length_tokens']:,} | {m['trained_steps']} | "
                     f"{m['train_seconds'] / 60:.1f} | {(m['train_cpu_seconds'] or 0) / 60:.1f} | "
                     f"{m['validation_bits_per_byte']:.3f} | {tests(m)} | {m['size_bytes'] / 1e6:.1f} |")
    lines += ["", "| model | clean bpb | clean word PPL | antspeak bpb (per noisy byte) | antspeak word PPL | "
              "word-PPL increase | ratio | clean KB/s | antspeak KB/s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in r["models"].items():
        c, n = m["cells"]["clean"], m["cells"][r["noise"]]
        lines.append(f"| {name} | {c['bits_per_byte']:.3f} | {fmt_ppl(c['word_perplexity'])} | "
                     f"{n['bits_per_byte']:.3f} | {fmt_ppl(n['word_perplexity'])} | "
                     f"+{fmt_ppl(m['word_ppl_increase'])} | {m['word_ppl_ratio']:.3g}x | "
                     f"{c['bytes'] / c['wall_seconds'] / 1e3:.1f} | {n['bytes'] / n['wall_seconds'] / 1e3:.1f} |")
    lines.append("")
    for b, a in r["acceptance"].items():
        lines.append(f"Acceptance ({b}): clean bits per byte {a['clean_bits_per_byte']:.3f} "
                     f"{'<=' if a['clean_bpb_at_most_2.5'] else '>'} 2.5; training bytes "
                     f"{'equal' if a['training_bytes_equal_within_one_sequence'] else 'NOT equal'} within one "
                     f"sequence; antspeak word-PPL increase "
                     f"{'below' if a['antspeak_increase_below_every_subword'] else 'NOT below'} every subword "
                     f"model's.")
    lines += ["", "Where the byte model's antspeak bits go, now and in the earlier KJV-only zoo (1.9M parameters, "
              "2 MB of KJV; bench/results/zoo-kjv-only.md), on each zoo's default slice:", "",
              "| zoo | model | bits per inserted space | per uppercase letter | per other byte | "
              "bits per byte by quarter of each document |", "|---|---|---:|---:|---:|---|"]
    rows = [("this (KJV + Shakespeare)", r)] + ([("earlier (KJV only)", r["earlier"])] if r.get("earlier") else [])
    for label, record in rows:
        for name, m in record["models"].items():
            if "antspeak_breakdown" in m:
                a = m["antspeak_breakdown"]
                quarters = " / ".join(f"{x:.2f}" for x in a["bits_per_byte_by_quarter"])
                lines.append(f"| {label} | {name} | {a['bits_per_space']:.2f} | {a['bits_per_upper']:.2f} | "
                             f"{a['bits_per_other']:.2f} | {quarters} |")
    lines += ["", "Flat quarters mean no in-context adaptation to the pattern along the document.",
              "", f"Machine: {r['machine']}. Command: `{r['command']}`. Date: {r['date']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
