"""A trained model's directory: config.json with its training record, weights, tokenizer, log and model card.

The card follows Hugging Face's layout: README.md, YAML metadata between `---` lines (license, datasets,
metrics, tags and a model-index with the test bits per byte) above the Markdown card. MODEL_CARD.md holds the
same text for readers of older releases. config.json carries Hugging Face's `model_type` where a convention
exists (the architecture's, models/architectures.py: "mamba" for Mamba; our GPT has none: it is not
transformers' GPT-2), next to our `architecture` key, which is what our loader reads.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from robustbench_bytes.files import write_bytes_atomic
from robustbench_bytes.formatting import format_measured_bits
from robustbench_bytes.models.architectures import ARCHITECTURES
from robustbench_bytes.training.config import TrainConfig, config_record
from robustbench_bytes.training.data import EOT, tokenizer_json, tokenizer_kind

LOG = "train_log.jsonl"
CARD_FILES = ("README.md", "MODEL_CARD.md")
LICENSE = "mit"  # the weights are ours (the package's license); the training text is public domain


def training_record(cfg: TrainConfig, result, tokenizer_kind: str, prefix_ids: list[int]) -> dict:
    """The "robustbench" block of config.json: what the model is and what it was trained on.
    train_length_bytes / train_length_tokens: one training sequence; train_bytes: UTF-8 bytes of every
    training target seen."""
    level = "byte" if tokenizer_kind == "bytes" else "subword"
    return {
        "name": cfg.name, "level": level, "architecture": cfg.model["architecture"],
        "tokenizer": tokenizer_kind, "prefix_ids": prefix_ids, "parameters": result.parameters,
        "trained_steps": result.steps, "train_seconds": round(result.train_seconds, 1),
        "train_cpu_seconds": round(result.cpu_seconds, 1), "threads": cfg.threads,
        "tokens_seen": result.tokens_seen, "train_bytes": result.bytes_seen,
        "train_length_tokens": result.seq_len,
        "train_length_bytes": round(result.seq_len * result.bytes_per_token),
        "train_data": list(cfg.data["train"]),
        "validation_bits_per_byte": _round(result.val_bpb),
        "test_bits_per_byte": {k: _round(v) for k, v in result.test_bpb.items()},
        "data": cfg.data, "seed": cfg.seed, "command": result.command,
        "train_config": config_record(cfg), "torch": torch.__version__, "machine": _machine(),
    }


def write_model_dir(out: Path, cfg: TrainConfig, model, model_config: dict, tokenizer, result) -> None:
    from robustbench_bytes.models.checkpoint import save_pretrained

    meta = training_record(cfg, result, tokenizer_kind(tokenizer), list(tokenizer.prefix_ids))
    config = dict(model_config, robustbench=meta,
                  provenance=f"robustbench-bytes zoo: {meta['level']}-level {meta['architecture']}, "
                             f"{result.parameters:,} parameters, trained on {meta['train_bytes']:,} bytes of "
                             f"{', '.join(cfg.data['train'])} with `robustbench train` (seed {cfg.seed})")
    model_type = ARCHITECTURES[meta["architecture"]].model_type
    if model_type:
        config["model_type"] = model_type
    save_pretrained(model, str(out), config, tokenizer_json=tokenizer_json(tokenizer))
    write_bytes_atomic(out / LOG, "".join(json.dumps(e) + "\n" for e in result.log).encode())
    card = card_metadata(cfg, meta) + model_card(cfg, meta)
    for name in CARD_FILES:
        write_bytes_atomic(out / name, card.encode())


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, {torch.get_num_threads()} torch thread(s)"


def _yaml(value, indent: int = 0) -> list[str]:
    """YAML lines of nested dicts/lists of scalars (scalars as JSON, which YAML reads as the same values)."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines += [f"{pad}{key}:"] + _yaml(item, indent + 2)
            else:
                lines.append(f"{pad}{key}: {json.dumps(item)}")
    else:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                inner = _yaml(item, indent + 2)
                lines += [f"{pad}- {inner[0].lstrip()}"] + inner[1:]
            else:
                lines.append(f"{pad}- {json.dumps(item)}")
    return lines


def card_metadata(cfg: TrainConfig, meta: dict) -> str:
    """The card's YAML front matter, as the Hugging Face Hub reads it (license, datasets, metrics, model-index)."""
    datasets = list(dict.fromkeys(name.split(":")[0] for name in cfg.data["train"]))
    results = [{"task": {"type": "text-generation", "name": "Language modeling"},
                "dataset": {"name": name, "type": name.split(":")[0], "split": name.partition(":")[2] or "test"},
                "metrics": [{"type": "bits_per_byte", "value": value, "name": "test bits per byte"}]}
               for name, value in meta["test_bits_per_byte"].items() if value is not None]
    fields = {"license": LICENSE, "language": ["en"], "library_name": "robustbench-bytes",
              "tags": [meta["architecture"], f"{meta['level']}-level", "robustbench-bytes"],
              "datasets": datasets, "metrics": ["bits_per_byte"], "pipeline_tag": "text-generation"}
    if results:
        fields["model-index"] = [{"name": cfg.name, "results": results}]
    return "\n".join(["---", *_yaml(fields), "---", ""]) + "\n"


def model_card(cfg: TrainConfig, meta: dict) -> str:
    arch = cfg.model["architecture"]
    tok = ("raw UTF-8 bytes (vocab 256), each document after one newline byte" if meta["tokenizer"] == "bytes"
           else f"byte-level BPE, vocab {cfg.tokenizer['vocab_size']}, trained with `tokenizers` on "
                f"{', '.join(cfg.data['train'])}; each document after {EOT}")
    tests = meta["test_bits_per_byte"]
    test_rows = [f"| test bits per byte, {name} | {format_measured_bits(v)} |" for name, v in tests.items()] or \
        ["| test bits per byte | n/a (no test data) |"]
    budget = (f"{meta['train_bytes']:,} bytes of training targets ({meta['tokens_seen']:,} tokens) in "
              f"{meta['trained_steps']} steps of {cfg.batch_size} sequences of {meta['train_length_tokens']} tokens "
              f"(about {meta['train_length_bytes']:,} bytes each)")
    data = ", ".join(cfg.data["train"])
    lines = [
        f"# {cfg.name}",
        "",
        cfg.description or f"A small {meta['level']}-level {arch} language model of the robustbench-bytes zoo.",
        "",
        "## Model details",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | {arch} ({meta['level']}-level) |",
        f"| parameters | {meta['parameters']:,} |",
        f"| model config | `{json.dumps(cfg.model.get('config', {}), sort_keys=True)}` |",
        f"| tokenizer | {tok} |",
        f"| license | {LICENSE.upper()} (weights); the training text is public domain |",
        "",
        "## Uses",
        "",
        "A small reference model for measuring robustness to character noise with robustbench-bytes (not for "
        f"generating text anyone relies on): `robustbench score --model {cfg.name}`, `robustbench run --model "
        f"{cfg.name} --suite paper`. The folder is in mamba_ssm's checkpoint format (config.json, "
        "model.safetensors" + (", tokenizer.json" if meta["tokenizer"] != "bytes" else "") + ").",
        "",
        "## Training data",
        "",
        f"{data}: the train splits of the built-in corpora, split by document (see `robustbench corpora`); "
        f"validation: {', '.join(cfg.data.get('validation', [])) or 'none'}; test: "
        f"{', '.join(cfg.data.get('test', [])) or 'none'}.",
        "",
        "## Training procedure",
        "",
        "| | |",
        "|---|---|",
        f"| trained on | {budget} |",
        f"| optimiser | AdamW lr {cfg.lr} -> {cfg.min_lr} (warm-up {cfg.warmup_steps}, cosine), "
        f"betas {list(cfg.betas)}, weight decay {cfg.weight_decay}, clip {cfg.grad_clip} |",
        f"| seed | {cfg.seed} |",
        f"| training time | {meta['train_seconds'] / 60:.1f} min wall, {meta['train_cpu_seconds'] / 60:.1f} min of "
        f"CPU time ({meta['machine']}) |",
        "",
        "Reproduce:",
        "",
        "```",
        meta["command"] or f"robustbench train --config configs/zoo/{cfg.name}.json --out DIR",
        "```",
        "",
        "Training log (loss, bytes seen and validation bits per byte by step): `train_log.jsonl`.",
        "",
        "## Evaluation",
        "",
        "| | |",
        "|---|---|",
        f"| validation bits per byte | {format_measured_bits(meta['validation_bits_per_byte'])} "
        f"({', '.join(cfg.data.get('validation', [])) or 'none'}) |",
        *test_rows,
        "",
        "Bits per byte here are the trainer's: every byte of every document, scored from the model's prefix "
        "(Mamba carries its state through the document; the Transformer sees disjoint windows of "
        f"{meta['train_length_tokens']} tokens). `robustbench score` gives the official numbers.",
        "",
        "## Limitations",
        "",
        f"Trained on {meta['train_bytes']:,} bytes of early-modern English (the KJV and Shakespeare): far from a "
        "general language model; its numbers compare models of this zoo under noise, not with published models.",
        "",
    ]
    return "\n".join(lines)
