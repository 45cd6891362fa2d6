"""The training loop for the zoo's small models (and users' own) on the CPU, deterministic given the config.

A run is fixed by its config file and seed: the model is initialised after torch.manual_seed(seed),
batches are random windows of the training token stream drawn by a torch.Generator seeded with
seed + 1, and the learning rate is a pure function of the step. Checkpoints (checkpoint.py,
every `checkpoint_every` steps) hold the weights, the optimizer state, both RNG states, the bytes seen and
the log, so a resumed run ends with the same weights as an uninterrupted one (same machine, same
thread count).

The training stream is every training document, each preceded by the model's prefix (a newline
byte for byte models, the end-of-text token for subword models): the same context that scoring
uses before a document's first token.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from robustbench_bytes.errors import BadInput, RunFailed, first_line
from robustbench_bytes.files import check_output_dir, read_json
from robustbench_bytes.training.model_card import write_model_dir
from robustbench_bytes.models.base import count_parameters
from robustbench_bytes.progress import progress_bar
from robustbench_bytes.results.metrics import LN2
from robustbench_bytes.training.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from robustbench_bytes.training.config import (TrainConfig, config_record, lr_at, planned_steps, same_run,
                                            sequence_tokens)
from robustbench_bytes.training.data import (bpe_tokenizer, byte_tokenizer, bytes_per_token, cut_to_budget,
                                          limit_documents, load_corpora, sample_batch, target_byte_sizes,
                                          token_stream, tokenizer_json, tokenizer_kind, train_bpe)
from robustbench_bytes.training.network import build_model

__all__ = ["TrainConfig", "TrainResult", "lr_at", "threads", "train"]


def logits_of(model: torch.nn.Module, ids: torch.Tensor, state=None):
    """(logits, state); GPT has no state."""
    if hasattr(model, "init_state"):
        return model(ids, state)
    return model(ids), None


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


@torch.no_grad()
def bits_per_byte(model: torch.nn.Module, tokenizer, documents: list[str],
                  window: int, vocab_size: int) -> float:
    """Each document scored from the model's prefix: nll of all its tokens / (its UTF-8 bytes * ln 2).
    Mamba carries its state across windows; a Transformer sees disjoint windows of `window` tokens,
    each after the window before (as lm-evaluation-harness's rolling log-likelihood)."""
    was_training = model.training
    model.eval()
    nll, nbytes = 0.0, 0
    for doc in documents:
        ids = torch.tensor(list(tokenizer.prefix_ids) + list(tokenizer.encode(doc)), dtype=torch.long)
        nbytes += len(doc.encode("utf-8"))
        state = None
        for start in range(0, len(ids) - 1, window):
            chunk = ids[start: start + window + 1]
            logits, state = logits_of(model, chunk[None, :-1], state)
            nll += F.cross_entropy(logits[0, :, :vocab_size], chunk[1:], reduction="sum").item()
    model.train(was_training)
    return nll / (max(nbytes, 1) * LN2)


@dataclass
class TrainResult:
    out: Path
    steps: int
    parameters: int
    train_seconds: float
    cpu_seconds: float
    final_loss: float
    val_bpb: float | None
    test_bpb: dict[str, float]
    log: list[dict]
    seq_len: int = 0
    bytes_per_token: float = 1.0
    tokens_seen: int = 0
    bytes_seen: int = 0
    command: str | None = None
    finished: bool = field(default=True)


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
        return _train(cfg, Path(out), resume=resume, quiet=quiet, command=command, stop_after=stop_after,
                      echo=echo or (lambda msg: None))


def _train(cfg: TrainConfig, out: Path, *, resume: bool, quiet: bool, command: str | None,
           stop_after: int | None, echo: Callable[[str], None]) -> TrainResult:
    """Train per `cfg`, writing OUT/checkpoints/last.pt periodically and, at the end, the model directory
    (config.json, model.safetensors, tokenizer.json for BPE, MODEL_CARD.md, train_log.jsonl).
    stop_after: stop (after checkpointing) once this many steps are done: for tests of resumption.
    Resuming a finished run rewrites the model directory from its last checkpoint."""
    ckpt_path = out / CHECKPOINT
    check_output_dir(out, written_by_train, f"one `robustbench train` wrote (no {CHECKPOINT}, no training "
                                            f"record in config.json)")
    record = config_record(cfg)
    state = None
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        if not same_run(state["config"], cfg):
            raise BadInput(f"{ckpt_path}: was written with a different config; train afresh without --resume "
                           f"or into another --out")
    elif ckpt_path.is_file() and not resume:
        raise BadInput(f"{ckpt_path}: a checkpoint exists; pass --resume to continue it or choose another --out")

    train_docs = load_corpora(cfg.data["train"]).documents
    if cfg.tokenizer["type"] == "bytes":
        tokenizer = byte_tokenizer()
    else:
        tokenizer = resumed_bpe(ckpt_path, state["tokenizer_json"]) if state else \
            bpe_tokenizer(train_bpe(train_docs, cfg.tokenizer["vocab_size"]))
    stream = token_stream(tokenizer, train_docs)
    byte_sizes = target_byte_sizes(tokenizer)
    per_token = bytes_per_token(byte_sizes, stream)
    seq_len = sequence_tokens(cfg, per_token)
    total_steps = planned_steps(cfg)
    val_specs = cfg.data.get("validation", [])
    val_docs = load_corpora(val_specs).documents if val_specs else []
    # the periodic evaluation: the first eval_bytes of each validation corpus
    eval_docs = [doc for spec in val_specs for doc in limit_documents(load_corpora([spec]).documents, cfg.eval_bytes)]

    torch.manual_seed(cfg.seed)
    model, model_config = build_model(cfg, tokenizer.vocab_size, seq_len)
    optimizer = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    step, seen, tokens, log, elapsed, cpu_before = 0, 0, 0, [], 0.0, 0.0
    saved_step = 0  # the step of the checkpoint on disk
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
            gen.set_state(state["sampler_rng"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            raise BadInput(f"{ckpt_path}: does not fit this config's model ({first_line(e, 200)})") \
                from None
        step, log, elapsed = state["step"], state["log"], float(state.get("elapsed", 0.0))
        saved_step = step
        seen = int(state.get("bytes_seen", 0))
        tokens = int(log[-1].get("tokens", step * cfg.batch_size * seq_len)) if log else 0
        cpu_before = float(state.get("cpu_seconds", 0.0))
        echo(f"resuming {cfg.name} at step {step}/{total_steps}")
    vocab = tokenizer.vocab_size
    n_params = count_parameters(model)
    length = (f"{cfg.train_bytes:,} bytes in sequences of {seq_len} tokens (~{seq_len * per_token:,.0f} bytes)"
              if cfg.by_bytes else f"{cfg.steps} steps of {cfg.batch_size}x{seq_len}")
    echo(f"{cfg.name}: {cfg.model['architecture']} {tokenizer_kind(tokenizer)}, {n_params:,} parameters, "
         f"{len(stream):,} training tokens ({per_token:.3f} bytes/token), {length}")

    def done() -> bool:
        return seen >= cfg.train_bytes if cfg.by_bytes else step >= cfg.steps

    model.train()
    loss_value = float("nan")
    bar = progress_bar(not quiet, total=total_steps, initial=min(step, total_steps), desc=cfg.name, unit="step")
    started = time.perf_counter() - elapsed
    cpu_started = time.process_time() - cpu_before
    while not done():
        lr = lr_at(cfg, step, total_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = sample_batch(stream, gen, cfg.batch_size, seq_len)
        batch, batch_bytes = cut_to_budget(batch, byte_sizes[batch[:, 1:]].sum(1), seen, cfg.train_bytes)
        logits, _ = logits_of(model, batch[:, :-1])
        loss = F.cross_entropy(logits[..., :vocab].reshape(-1, vocab), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        step += 1
        seen += batch_bytes
        tokens += batch.shape[0] * seq_len
        loss_value = loss.item()
        diverged = not_finite(loss_value, model)
        if diverged:
            last = f"{CHECKPOINT} of step {saved_step} is kept" if saved_step else "no checkpoint is written"
            raise RunFailed(f"{out}: {diverged} at step {step}; no model is written and {last} (a lower lr "
                            f"or a grad_clip may help)")
        entry = {"step": step, "loss": round(loss_value, 5), "lr": lr, "bytes": seen, "tokens": tokens,
                 "seconds": round(time.perf_counter() - started, 2)}
        if eval_docs and (step % cfg.eval_every == 0 or done()):
            entry["val_bpb"] = round(bits_per_byte(model, tokenizer, eval_docs, seq_len, vocab), 5)
            echo(f"step {step}: loss {loss_value:.4f}, validation {entry['val_bpb']:.4f} bits/byte")
        log.append(entry)
        bar.set_postfix(loss=f"{loss_value:.3f}", **({"val_bpb": entry["val_bpb"]} if "val_bpb" in entry else {}))
        bar.update(1)
        stopping = bool(stop_after and step >= stop_after)
        if step % cfg.checkpoint_every == 0 or done() or stopping:
            save_checkpoint(ckpt_path, step=step, bytes_seen=seen, model=model, optimizer=optimizer, gen=gen,
                            log=log, tokenizer_json=tokenizer_json(tokenizer), elapsed=time.perf_counter() - started,
                            cpu_seconds=time.process_time() - cpu_started, config=record)
            saved_step = step
        if stopping and not done():
            bar.close()
            return TrainResult(out, step, n_params, time.perf_counter() - started,
                               time.process_time() - cpu_started, loss_value, None, {}, log, seq_len, per_token,
                               tokens, seen, command, finished=False)
    bar.close()
    train_seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started

    val_bpb = bits_per_byte(model, tokenizer, val_docs, seq_len, vocab) if val_docs else None
    test_bpb = {spec: bits_per_byte(model, tokenizer, load_corpora([spec]).documents, seq_len, vocab)
                for spec in cfg.data.get("test", [])}
    result = TrainResult(out, step, n_params, train_seconds, cpu_seconds, loss_value, val_bpb, test_bpb, log,
                         seq_len, per_token, tokens, seen, command)
    check_publishable(out, model, {"validation": val_bpb, **test_bpb})
    write_model_dir(out, cfg, model, model_config, tokenizer, result)
    return result


def resumed_bpe(ckpt_path: Path, tokenizer_json: str):
    """The BPE tokenizer a checkpoint holds; BadInput naming the checkpoint when it cannot be read."""
    try:
        return bpe_tokenizer(tokenizer_json)
    except BadInput as e:
        raise BadInput(f"{ckpt_path}: its tokenizer: {e}") from None
    except Exception as e:  # the tokenizers library raises its own exception types for a broken tokenizer
        raise BadInput(f"{ckpt_path}: its tokenizer cannot be read ({first_line(e)})") from None


def written_by_train(out: Path) -> bool:
    """Whether `out` is a folder `robustbench train` wrote: its checkpoint, or a config.json with the training
    record (model_card.training_record) that a finished run writes."""
    if (out / CHECKPOINT).is_file():
        return True
    try:
        config = read_json(out / "config.json")
    except BadInput:
        return False
    record = config.get("robustbench") if isinstance(config, dict) else None
    return isinstance(record, dict) and "train_config" in record


def not_finite(loss: float, model: torch.nn.Module) -> str | None:
    """What is not finite after a training step (the loss, else the first weight that is NaN or infinite), or
    None: a step that diverged is never checkpointed, so a checkpoint on disk always holds finite weights."""
    if not math.isfinite(loss):
        return f"the training loss is {loss}"
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            return f"weight {name!r} is not finite"
    return None


def check_publishable(out: Path, model: torch.nn.Module, bits: dict[str, float | None]) -> None:
    """RunFailed (nothing written) when the model has a weight or a measured bits per byte that is not finite:
    a model directory is only ever written with finite weights and numbers."""
    diverged = not_finite(0.0, model)
    if diverged:
        raise RunFailed(f"{out}: {diverged} in the trained model; no model is written")
    for corpus, value in bits.items():
        if value is not None and not math.isfinite(value):
            raise RunFailed(f"{out}: {corpus} bits per byte is {value}; no model is written")
