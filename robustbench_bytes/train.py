"""Training the small models of the built-in zoo (and users' own) on the CPU, deterministically.

A run is fixed by its config file and seed: the model is initialised after torch.manual_seed(seed),
batches are random windows of the training token stream drawn by a torch.Generator seeded with
seed + 1, and the learning rate is a pure function of the step. Checkpoints (every
`checkpoint_every` steps, written atomically to OUT/checkpoints/last.pt with torch.save and read
back with torch.load(weights_only=True): plain tensors, numbers, strings, lists and dicts) hold the
weights, the optimizer state, both RNG states and the log, so a resumed run ends with the same
weights as an uninterrupted one (same machine, same thread count).

The training stream is every training document, each preceded by the model's prefix (a newline
byte for byte models, the end-of-text token for subword models): the same context that scoring
uses before a document's first token.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from robustbench_bytes.corpora import Corpus, load_corpus
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import read_json, write_bytes_atomic
from robustbench_bytes.progress import progress_bar

LN2 = math.log(2.0)
EOT = "<|endoftext|>"
BYTE_PREFIX = [10]  # a newline byte: the byte models' context before a document
CHECKPOINT = "checkpoints/last.pt"
LOG = "train_log.jsonl"
ARCHITECTURES = ("mamba", "transformer")
TOKENIZERS = ("bytes", "bpe")


# ---------------------------------------------------------------- config


@dataclass
class TrainConfig:
    """One training run. `model` is {"architecture": "mamba"|"transformer", "config": {...}} where config is
    MambaConfig's or GPTConfig's fields without vocab_size (taken from the tokenizer)."""

    name: str
    model: dict
    tokenizer: dict = field(default_factory=lambda: {"type": "bytes"})
    data: dict = field(default_factory=lambda: {"train": ["kjv:train"], "validation": ["kjv:validation"],
                                                "test": ["kjv:default"]})
    steps: int = 1000
    batch_size: int = 16
    seq_len: int = 256
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 50
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.95)
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 100
    eval_bytes: int | None = None
    checkpoint_every: int = 50
    threads: int | None = 2
    description: str = ""

    @classmethod
    def from_dict(cls, raw: object, where: str) -> "TrainConfig":
        if not isinstance(raw, dict):
            raise BadInput(f"{where}: expected a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise BadInput(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        for key in ("name", "model"):
            if key not in raw:
                raise BadInput(f"{where}: missing required key {key!r}")
        cfg = cls(**raw)
        cfg.check(where)
        return cfg

    @classmethod
    def from_file(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        if not path.is_file():
            raise BadInput(f"{path}: no such config file")
        return cls.from_dict(read_json(path), str(path))

    def check(self, where: str) -> None:
        def bad(key, expected):
            raise BadInput(f"{where}: key {key!r} = {getattr(self, key)!r}; expected {expected}")

        if not isinstance(self.name, str) or not self.name:
            bad("name", "a non-empty string")
        if not isinstance(self.model, dict) or self.model.get("architecture") not in ARCHITECTURES:
            raise BadInput(f"{where}: key 'model.architecture' must be one of {', '.join(ARCHITECTURES)}")
        if not isinstance(self.model.get("config", {}), dict):
            raise BadInput(f"{where}: key 'model.config' must be an object")
        if not isinstance(self.tokenizer, dict) or self.tokenizer.get("type") not in TOKENIZERS:
            raise BadInput(f"{where}: key 'tokenizer.type' must be one of {', '.join(TOKENIZERS)}")
        if self.tokenizer["type"] == "bpe":
            v = self.tokenizer.get("vocab_size")
            if not isinstance(v, int) or not 300 <= v <= 65536:
                raise BadInput(f"{where}: key 'tokenizer.vocab_size' = {v!r}; expected an integer in 300..65536")
        if not isinstance(self.data, dict) or not self.data.get("train"):
            raise BadInput(f"{where}: key 'data.train' must list at least one corpus")
        for part in ("train", "validation", "test"):
            specs = self.data.get(part, [])
            if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
                raise BadInput(f"{where}: key 'data.{part}' must be a list of corpus names")
        for key in ("steps", "batch_size", "seq_len", "eval_every", "checkpoint_every"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(key, "a positive integer")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            bad("warmup_steps", "an integer >= 0")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            bad("seed", "an integer")
        for key in ("lr", "min_lr", "weight_decay", "grad_clip"):
            v = getattr(self, key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                bad(key, "a number >= 0")
        if not (isinstance(self.betas, (list, tuple)) and len(self.betas) == 2
                and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas)):
            bad("betas", "two numbers in [0, 1)")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            bad("threads", "a positive integer or null")
        if self.eval_bytes is not None and (not isinstance(self.eval_bytes, int) or self.eval_bytes < 1):
            bad("eval_bytes", "a positive integer or null")


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.min_lr at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


# ---------------------------------------------------------------- data and tokenizer


def load_corpora(specs: list[str]) -> Corpus:
    docs, ids = [], []
    for spec in specs:
        corpus = load_corpus(spec)
        docs += corpus.documents
        ids += [f"{spec}/{d}" for d in (corpus.doc_ids or range(len(corpus.documents)))]
    return Corpus(name="+".join(specs), documents=docs, doc_ids=ids)


@dataclass
class TokenizerInfo:
    """What training needs from a tokenizer: encode, vocabulary size, the document prefix."""

    kind: str
    vocab_size: int
    prefix_ids: list[int]
    encode: Callable[[str], list[int]]
    json: str | None = None  # tokenizer.json text for subword tokenizers


def byte_tokenizer() -> TokenizerInfo:
    return TokenizerInfo("bytes", 256, list(BYTE_PREFIX), lambda text: list(text.encode("utf-8")))


def train_bpe(documents: list[str], vocab_size: int) -> str:
    """A byte-level BPE (GPT-2 style pre-tokenisation, so every string is encodable) trained on `documents`;
    returns tokenizer.json text. Id 0 is the end-of-text token, used as the document prefix."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(documents, trainer=trainer, length=len(documents))
    return tok.to_str()


def bpe_tokenizer(tokenizer_json: str) -> TokenizerInfo:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    eot = tok.token_to_id(EOT)
    if eot is None:
        raise BadInput(f"tokenizer.json: no {EOT!r} token")
    return TokenizerInfo("bpe", tok.get_vocab_size(), [eot],
                         lambda text: tok.encode(text, add_special_tokens=False).ids, tokenizer_json)


def token_stream(tokenizer: TokenizerInfo, documents: list[str]) -> torch.Tensor:
    ids: list[int] = []
    for doc in documents:
        ids += tokenizer.prefix_ids
        ids += tokenizer.encode(doc)
    return torch.tensor(ids, dtype=torch.long)


def sample_batch(stream: torch.Tensor, gen: torch.Generator, batch: int, seq_len: int) -> torch.Tensor:
    """`batch` random windows of seq_len + 1 tokens (inputs and shifted targets)."""
    if len(stream) < seq_len + 2:
        raise BadInput(f"training data: {len(stream)} tokens, fewer than seq_len + 2 = {seq_len + 2}")
    starts = torch.randint(0, len(stream) - seq_len - 1, (batch,), generator=gen)
    return torch.stack([stream[s: s + seq_len + 1] for s in starts.tolist()])


# ---------------------------------------------------------------- model


def build_model(cfg: TrainConfig, vocab_size: int) -> tuple[torch.nn.Module, dict]:
    """The randomly initialised model and its config.json dict."""
    arch = cfg.model["architecture"]
    model_cfg = dict(cfg.model.get("config", {}), vocab_size=vocab_size)
    try:
        if arch == "mamba":
            from robustbench_bytes.models.mamba import MambaConfig, MambaLM

            mc = MambaConfig.from_dict(model_cfg)
            model = MambaLM(mc)
            model.scan_backend = "cpu"  # the kernel's fast, differentiable CPU path
            return model, mc.to_dict()
        from robustbench_bytes.models.transformer import GPT, GPTConfig

        gc = GPTConfig.from_dict(model_cfg)
        if cfg.seq_len > gc.block_size:
            raise ValueError(f"seq_len={cfg.seq_len} exceeds block_size={gc.block_size}")
        return GPT(gc), gc.to_dict()
    except KeyError as e:
        raise BadInput(f"model.config: missing required field {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise BadInput(f"model.config: {e}") from None


def logits_of(model: torch.nn.Module, ids: torch.Tensor, state=None):
    """(logits, state); GPT has no state."""
    if hasattr(model, "init_state"):
        return model(ids, state)
    return model(ids), None


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay, seen = [], [], set()
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        # norms, biases, and Mamba's A_log / D are not decayed (as mamba_ssm)
        (decay if p.dim() >= 2 and not name.endswith("A_log") else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def bits_per_byte(model: torch.nn.Module, tokenizer: TokenizerInfo, documents: list[str],
                  window: int, vocab_size: int) -> float:
    """Each document scored from the model's prefix: nll of all its tokens / (its UTF-8 bytes * ln 2).
    Mamba carries its state across windows; a Transformer sees disjoint windows of `window` tokens,
    each after the window before (as lm-evaluation-harness's rolling log-likelihood)."""
    was_training = model.training
    model.eval()
    nll, nbytes = 0.0, 0
    for doc in documents:
        ids = torch.tensor(tokenizer.prefix_ids + tokenizer.encode(doc), dtype=torch.long)
        nbytes += len(doc.encode("utf-8"))
        state = None
        for start in range(0, len(ids) - 1, window):
            chunk = ids[start: start + window + 1]
            logits, state = logits_of(model, chunk[None, :-1], state)
            nll += F.cross_entropy(logits[0, :, :vocab_size], chunk[1:], reduction="sum").item()
    model.train(was_training)
    return nll / (max(nbytes, 1) * LN2)


def limit_documents(docs: list[str], limit: int | None) -> list[str]:
    if limit is None:
        return docs
    return Corpus(name="", documents=docs).limit_bytes(limit).documents


# ---------------------------------------------------------------- checkpoints


def save_checkpoint(path: Path, *, step: int, model, optimizer, gen: torch.Generator, log: list[dict],
                    tokenizer_json: str | None, elapsed: float, cpu_seconds: float, config: dict) -> None:
    import io

    state = {
        "step": step,
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "sampler_rng": gen.get_state(),
        "log": json.dumps(log),
        "tokenizer_json": tokenizer_json or "",
        "elapsed": float(elapsed),
        "cpu_seconds": float(cpu_seconds),
        "config": json.dumps(config, sort_keys=True),
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes_atomic(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt, truncated or unsafe file
        raise BadInput(f"{path}: cannot load checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:200]})") \
            from None


# ---------------------------------------------------------------- training


@dataclass
class TrainResult:
    out: Path
    steps: int
    parameters: int
    train_seconds: float
    cpu_seconds: float
    final_loss: float
    val_bpb: float | None
    test_bpb: float | None
    log: list[dict]


@contextmanager
def threads(n: int | None):
    """torch's intra-op threads and the numba threads of the CPU scan kernel set to n inside the block, and
    given back afterwards (thread counts change float summation order: they must not leak into scoring)."""
    if not n:
        yield
        return
    import numba

    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])


def train(cfg: TrainConfig, out: str | Path, *, resume: bool = False, quiet: bool = False,
          command: str | None = None, stop_after: int | None = None,
          echo: Callable[[str], None] | None = None) -> TrainResult:
    """Train per `cfg` (see _train), with the config's thread count inside and the caller's afterwards."""
    with threads(cfg.threads):
        return _train(cfg, out, resume=resume, quiet=quiet, command=command, stop_after=stop_after, echo=echo)


def _train(cfg: TrainConfig, out: str | Path, *, resume: bool = False, quiet: bool = False,
          command: str | None = None, stop_after: int | None = None,
          echo: Callable[[str], None] | None = None) -> TrainResult:
    """Train per `cfg`, writing OUT/checkpoints/last.pt periodically and, at the end, the model directory
    (config.json, model.safetensors, tokenizer.json for BPE, MODEL_CARD.md, train_log.jsonl).
    stop_after: stop (after checkpointing) once this many steps are done: for tests of resumption."""
    out = Path(out)
    echo = echo or (lambda msg: None)
    ckpt_path = out / CHECKPOINT
    config_json = asdict(cfg)
    state = None
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        if json.loads(state["config"]) != json.loads(json.dumps(config_json, sort_keys=True)):
            raise BadInput(f"{ckpt_path}: was written with a different config; train afresh without --resume "
                           f"or into another --out")
    elif ckpt_path.is_file() and not resume:
        raise BadInput(f"{ckpt_path}: a checkpoint exists; pass --resume to continue it or choose another --out")

    train_docs = load_corpora(cfg.data["train"]).documents
    if cfg.tokenizer["type"] == "bytes":
        tokenizer = byte_tokenizer()
    else:
        tok_json = state["tokenizer_json"] if state else train_bpe(train_docs, cfg.tokenizer["vocab_size"])
        tokenizer = bpe_tokenizer(tok_json)
    stream = token_stream(tokenizer, train_docs)
    val_docs = load_corpora(cfg.data["validation"]).documents if cfg.data.get("validation") else []
    eval_docs = limit_documents(val_docs, cfg.eval_bytes)

    torch.manual_seed(cfg.seed)
    model, model_config = build_model(cfg, tokenizer.vocab_size)
    optimizer = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    step, log, elapsed, cpu_before = 0, [], 0.0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        gen.set_state(state["sampler_rng"])
        step, log, elapsed = int(state["step"]), json.loads(state["log"]), float(state["elapsed"])
        cpu_before = float(state.get("cpu_seconds", 0.0))
        echo(f"resuming {cfg.name} at step {step}/{cfg.steps}")
    vocab = tokenizer.vocab_size
    window = cfg.seq_len
    n_params = parameter_count(model)
    echo(f"{cfg.name}: {cfg.model['architecture']} {tokenizer.kind}, {n_params:,} parameters, "
         f"{len(stream):,} training tokens, {cfg.steps} steps of {cfg.batch_size}x{cfg.seq_len}")

    model.train()
    loss_value = float("nan")
    bar = progress_bar(not quiet, total=cfg.steps, initial=step, desc=cfg.name, unit="step")
    started = time.perf_counter() - elapsed
    cpu_started = time.process_time() - cpu_before
    while step < cfg.steps:
        lr = lr_at(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = sample_batch(stream, gen, cfg.batch_size, cfg.seq_len)
        logits, _ = logits_of(model, batch[:, :-1])
        loss = F.cross_entropy(logits[..., :vocab].reshape(-1, vocab), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        step += 1
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise RuntimeError(f"training loss is {loss_value} at step {step}")
        entry = {"step": step, "loss": round(loss_value, 5), "lr": lr,
                 "seconds": round(time.perf_counter() - started, 2)}
        if eval_docs and (step % cfg.eval_every == 0 or step == cfg.steps):
            entry["val_bpb"] = round(bits_per_byte(model, tokenizer, eval_docs, window, vocab), 5)
            echo(f"step {step}: loss {loss_value:.4f}, validation {entry['val_bpb']:.4f} bits/byte")
        log.append(entry)
        bar.set_postfix(loss=f"{loss_value:.3f}", **({"val_bpb": entry["val_bpb"]} if "val_bpb" in entry else {}))
        bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or (stop_after and step >= stop_after):
            save_checkpoint(ckpt_path, step=step, model=model, optimizer=optimizer, gen=gen, log=log,
                            tokenizer_json=tokenizer.json, elapsed=time.perf_counter() - started,
                            cpu_seconds=time.process_time() - cpu_started, config=config_json)
        if stop_after and step >= stop_after and step < cfg.steps:
            bar.close()
            return TrainResult(out, step, n_params, time.perf_counter() - started,
                               time.process_time() - cpu_started, loss_value, None, None, log)
    bar.close()
    train_seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started

    val_bpb = bits_per_byte(model, tokenizer, val_docs, window, vocab) if val_docs else None
    test_specs = cfg.data.get("test", [])
    test_bpb = (bits_per_byte(model, tokenizer, load_corpora(test_specs).documents, window, vocab)
                if test_specs else None)
    result = TrainResult(out, step, n_params, train_seconds, cpu_seconds, loss_value, val_bpb, test_bpb, log)
    write_model_dir(out, cfg, model, model_config, tokenizer, result, command)
    return result


def write_model_dir(out: Path, cfg: TrainConfig, model, model_config: dict, tokenizer: TokenizerInfo,
                    result: TrainResult, command: str | None) -> None:
    from robustbench_bytes.models.checkpoint import save_pretrained

    level = "byte" if tokenizer.kind == "bytes" else "subword"
    meta = {
        "name": cfg.name, "level": level, "architecture": cfg.model["architecture"],
        "tokenizer": tokenizer.kind, "prefix_ids": tokenizer.prefix_ids, "parameters": result.parameters,
        "trained_steps": result.steps, "train_seconds": round(result.train_seconds, 1),
        "train_cpu_seconds": round(result.cpu_seconds, 1), "threads": cfg.threads,
        "tokens_seen": result.steps * cfg.batch_size * cfg.seq_len,
        "validation_bits_per_byte": _round(result.val_bpb), "test_bits_per_byte": _round(result.test_bpb),
        "data": cfg.data, "seed": cfg.seed, "command": command,
        "train_config": asdict(cfg), "torch": torch.__version__, "machine": _machine(),
    }
    config = dict(model_config, robustbench=meta,
                  provenance=f"robustbench-bytes zoo: {meta['level']}-level {meta['architecture']}, "
                             f"{result.parameters:,} parameters, trained {result.steps} steps on "
                             f"{', '.join(cfg.data['train'])} with `robustbench train` (seed {cfg.seed})")
    save_pretrained(model, str(out), config, tokenizer_json=tokenizer.json)
    write_bytes_atomic(out / LOG, "".join(json.dumps(e) + "\n" for e in result.log).encode())
    write_bytes_atomic(out / "MODEL_CARD.md", model_card(cfg, meta).encode())


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, {torch.get_num_threads()} torch thread(s)"


def model_card(cfg: TrainConfig, meta: dict) -> str:
    arch = cfg.model["architecture"]
    tok = ("raw UTF-8 bytes (vocab 256), each document after one newline byte" if meta["tokenizer"] == "bytes"
           else f"byte-level BPE, vocab {cfg.tokenizer['vocab_size']}, trained with `tokenizers` on "
                f"{', '.join(cfg.data['train'])}; each document after {EOT}")
    fmt = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731
    lines = [
        f"# {cfg.name}",
        "",
        cfg.description or f"A small {meta['level']}-level {arch} language model of the robustbench-bytes zoo.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | {arch} ({meta['level']}-level) |",
        f"| parameters | {meta['parameters']:,} |",
        f"| model config | `{json.dumps(cfg.model.get('config', {}), sort_keys=True)}` |",
        f"| tokenizer | {tok} |",
        f"| training data | {', '.join(cfg.data['train'])} (split by document, see `robustbench corpora`) |",
        f"| steps | {meta['trained_steps']} x batch {cfg.batch_size} x {cfg.seq_len} tokens "
        f"= {meta['tokens_seen']:,} tokens |",
        f"| optimiser | AdamW lr {cfg.lr} -> {cfg.min_lr} (warm-up {cfg.warmup_steps}, cosine), "
        f"betas {list(cfg.betas)}, weight decay {cfg.weight_decay}, clip {cfg.grad_clip} |",
        f"| seed | {cfg.seed} |",
        f"| training time | {meta['train_seconds'] / 60:.1f} min wall, {meta['train_cpu_seconds'] / 60:.1f} min of "
        f"CPU time ({meta['machine']}) |",
        f"| validation bits per byte | {fmt(meta['validation_bits_per_byte'])} "
        f"({', '.join(cfg.data.get('validation', [])) or 'none'}) |",
        f"| test bits per byte | {fmt(meta['test_bits_per_byte'])} ({', '.join(cfg.data.get('test', [])) or 'none'}) |",
        "",
        "Bits per byte here are the trainer's: every byte of every document, scored from the model's prefix "
        "(Mamba carries its state through the document; the Transformer sees disjoint windows of "
        f"{cfg.seq_len} tokens). `robustbench score` gives the official numbers.",
        "",
        "Reproduce:",
        "",
        "```",
        meta["command"] or f"robustbench train --config configs/zoo/{cfg.name}.json --out DIR",
        "```",
        "",
        "Training log (loss and validation bits per byte by step): `train_log.jsonl`.",
        "",
    ]
    return "\n".join(lines)
