"""Helpers for the run/report/compare tests (no tests here): synthetic run directories shaped like
`robustbench run` output, tiny random-weight mamba_ssm checkpoints and a tiny corpus."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np

from robustbench_bytes import results as results_io
from robustbench_bytes.runs import Cell

LN2 = math.log(2)


def fake_result(model: str, noise: str, seed: int, docs: list[dict], corpus="fake", corpus_sha="c0ffee") -> dict:
    nll = math.fsum(d["nll"] for d in docs)
    n_bytes = sum(d["bytes"] for d in docs)
    clean_bytes = sum(d["clean_bytes"] for d in docs)
    words = sum(d["clean_words"] for d in docs)
    return {
        "model": model, "noise": noise, "seed": seed, "corpus": corpus, "documents": len(docs),
        "level": "byte", "architecture": "mamba", "nll": nll, "bytes": n_bytes, "clean_bytes": clean_bytes,
        "clean_words": words, "tokens": n_bytes, "bits_per_byte": nll / (n_bytes * LN2),
        "bits_per_clean_byte": nll / (clean_bytes * LN2), "word_perplexity": math.exp(nll / words),
        "byte_perplexity": math.exp(nll / n_bytes), "seconds": 1.0, "bytes_per_second": float(n_bytes),
        "status": "ok", "error": None, "cell": Cell(model, noise, seed).key, "model_spec": model,
        "corpus_sha256": corpus_sha, "checkpoint_sha256": f"sha-{model}", "scoring_version": "test",
    }


def write_fake_run(out: Path, bpcb: dict[str, dict[str, float]], *, n_docs: int = 12, seeds=(0,),
                   corpus_sha: str = "c0ffee", rng_seed: int = 0, failed: set[tuple[str, str]] = frozenset(),
                   jitter: float = 0.01) -> list[dict]:
    """A run directory whose cell (model, noise) has bits per clean byte close to bpcb[noise][model].

    Documents share their sizes and a per-document difficulty across models and noises (as a real
    corpus would), so paired comparisons see correlated documents. `failed` lists (model, noise)
    cells to record as failed."""
    rng = np.random.default_rng(rng_seed)
    sizes = np.random.default_rng(7).integers(150, 450, size=n_docs)
    words = np.maximum(1, (sizes * 0.18).astype(int))
    difficulty = np.random.default_rng(11).normal(1.0, 0.08, size=n_docs)
    results = []
    models = list(next(iter(bpcb.values())))
    for model in models:
        for noise, per_model in bpcb.items():
            for seed in ((0,) if noise == "clean" else seeds):
                noise_factor = 1.0 if noise == "clean" else rng.normal(1.0, jitter, size=n_docs)
                nll = per_model[model] * LN2 * sizes * difficulty * noise_factor
                n_bytes = sizes if noise == "clean" else (sizes * 1.1).astype(int)
                docs = [{"index": i, "nll": float(nll[i]), "tokens": int(n_bytes[i]), "bytes": int(n_bytes[i]),
                         "clean_bytes": int(sizes[i]), "clean_words": int(words[i])} for i in range(n_docs)]
                result = fake_result(model, noise, seed, docs, corpus_sha=corpus_sha)
                if (model, noise) in failed:
                    for name in ("nll", "bits_per_byte", "bits_per_clean_byte", "word_perplexity",
                                 "byte_perplexity"):
                        result[name] = None
                    result.update(status="failed", error="NonFiniteScore: document 3 has a non-finite NLL")
                    docs = []
                # written as run format 1 did (plain dicts): old run directories must keep loading
                results_io.write_json_atomic(results_io.cell_path(out, result["cell"]),
                                             {"format": "robustbench-cell/1", "cell": result["cell"], "inputs": {},
                                              "status": result["status"], "result": result, "documents": docs})
                results.append(result)
    results_io.write_json_atomic(Path(out) / results_io.RESULTS_FILE, results)
    return results


def make_mamba_checkpoint(directory: Path, seed: int = 0, head_scale: float = 1.0, d_model: int = 16) -> Path:
    """A random-weight byte-level Mamba in mamba_ssm format (config.json + model.safetensors)."""
    import torch

    from robustbench_bytes.models.checkpoint import save_pretrained
    from robustbench_bytes.models.mamba import MambaConfig, MambaLM

    torch.manual_seed(seed)
    config = MambaConfig(d_model=d_model, n_layer=1, vocab_size=256, ssm_cfg={"d_state": 4}, rms_norm=False,
                         tie_embeddings=False)
    model = MambaLM(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(head_scale)
    save_pretrained(model, directory, config.to_dict())
    return Path(directory)


def write_tiny_corpus(directory: Path, n_docs: int = 4, words_per_doc: int = 40, seed: int = 0) -> Path:
    """A directory of short English-like .txt documents."""
    vocabulary = ("the quick brown fox jumps over a lazy dog while an old owl sat on the barn roof "
                  "and watched the river run past the mill").split()
    rng = random.Random(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        words = [rng.choice(vocabulary) for _ in range(words_per_doc)]
        (directory / f"doc{i:02d}.txt").write_text(" ".join(words).capitalize() + ".\n", encoding="utf-8")
    return directory


def quiet_env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env["MPLCONFIGDIR"] = str(tmp_path / "mplconfig")
    return env


def in_memory_model(module, tokenizer, name: str, level: str, **fields):
    """A LoadedModel around a network the test built (no checkpoint): a Mamba streams, a GPT takes windows of its
    block size; `fields` add to or override the rest (vocab_size, info, ...)."""
    import torch

    from robustbench_bytes.models.base import LoadedModel, count_parameters
    from robustbench_bytes.models.mamba import MambaLM

    if isinstance(module, MambaLM):
        kind = {"architecture": "mamba", "stream": module}
    else:
        kind = {"architecture": "transformer", "window": lambda ids, mask: module(ids),
                "max_length": module.config.block_size}
    return LoadedModel(**{"name": name, "level": level, "module": module, "tokenizer": tokenizer,
                          "device": torch.device("cpu"), "checkpoint_sha256": "0" * 64, "source": "test",
                          "parameters": count_parameters(module), **kind, **fields})
