"""A training run's config (the JSON files under configs/zoo/) and its learning-rate schedule."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import read_json
from robustbench_bytes.models.architectures import ARCHITECTURES

TOKENIZERS = ("bytes", "bpe")
# the integer keys and their ranges: wide enough for any CPU run, bounded so that a typo cannot ask for a batch
# that fills the machine's memory or a seed torch cannot take (seed + 1 seeds the batch sampler)
INT_RANGES = {
    "steps": (1, 10**9), "batch_size": (1, 4096), "seq_len": (1, 1 << 16), "eval_every": (1, 10**9),
    "checkpoint_every": (1, 10**9), "train_bytes": (1, 1 << 50), "seq_bytes": (1, 1 << 20),
    "eval_bytes": (1, 1 << 50), "threads": (1, 1024), "warmup_steps": (0, 10**9), "seed": (0, (1 << 63) - 2),
}
# the number keys' largest values: what torch's float32 optimizer arithmetic can take (AdamW multiplies the
# weights by 1 - lr * weight_decay)
NUMBER_LIMITS = {"lr": 1e4, "min_lr": 1e4, "weight_decay": 1e4, "grad_clip": 1e30}
OPTIONAL = ("train_bytes", "seq_bytes", "eval_bytes", "threads")
# keys that cannot change a trained weight: a checkpoint written before an edit of them still resumes
COSMETIC_KEYS = ("description",)


@dataclass
class TrainConfig:
    """One training run. `model` is {"architecture": "mamba"|"transformer", "config": {...}} where config is
    MambaConfig's or GPTConfig's fields without vocab_size (taken from the tokenizer).

    Two ways to say how long to train: `steps` batches of `seq_len` tokens, or a byte budget:
    `train_bytes` UTF-8 bytes of training targets in sequences of about `seq_bytes` bytes each (a subword
    model's token length is then seq_bytes / the training stream's bytes per token, so that models of
    every tokenizer see the same text). With a budget the last batch is cut so that the bytes seen end
    within one sequence of it. eval_bytes: how much of each validation corpus the evaluation every
    eval_every steps reads (all of it at the end)."""

    name: str
    model: dict
    tokenizer: dict = field(default_factory=lambda: {"type": "bytes"})
    data: dict = field(default_factory=lambda: {"train": ["kjv:train"], "validation": ["kjv:validation"],
                                                "test": ["kjv:default"]})
    steps: int = 1000
    batch_size: int = 16
    seq_len: int = 256
    train_bytes: int | None = None
    seq_bytes: int | None = None
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

    @property
    def by_bytes(self) -> bool:
        return self.train_bytes is not None

    def check(self, where: str) -> None:
        def bad(key, expected):
            shown = repr(getattr(self, key))
            shown = shown if len(shown) <= 60 else f"{shown[:40]}... ({len(shown)} characters)"
            raise BadInput(f"{where}: key {key!r} = {shown}; expected {expected}")

        def is_int(v):
            return isinstance(v, int) and not isinstance(v, bool)

        def is_number(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

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
            if not is_int(v) or not 300 <= v <= 65536:
                raise BadInput(f"{where}: key 'tokenizer.vocab_size' = {v!r}; expected an integer in 300..65536")
        if not isinstance(self.data, dict) or not self.data.get("train"):
            raise BadInput(f"{where}: key 'data.train' must list at least one corpus")
        for part in ("train", "validation", "test"):
            specs = self.data.get(part, [])
            if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
                raise BadInput(f"{where}: key 'data.{part}' must be a list of corpus names")
        for key, (low, high) in INT_RANGES.items():
            v = getattr(self, key)
            if v is None and key in OPTIONAL:
                continue
            if not is_int(v) or not low <= v <= high:
                bad(key, f"an integer in {low}..{high}" + (" or null" if key in OPTIONAL else ""))
        if (self.train_bytes is None) != (self.seq_bytes is None):
            raise BadInput(f"{where}: keys 'train_bytes' and 'seq_bytes' go together (a byte budget in "
                           f"sequences of seq_bytes); give both or neither")
        for key, high in NUMBER_LIMITS.items():
            v = getattr(self, key)
            if not is_number(v) or not 0 <= v <= high:
                bad(key, f"a number in 0..{high:g}")
        if not (isinstance(self.betas, (list, tuple)) and len(self.betas) == 2
                and all(is_number(b) and 0 <= b < 1 for b in self.betas)):
            bad("betas", "two numbers in [0, 1)")
        if not isinstance(self.description, str):
            bad("description", "a string")


def planned_steps(cfg: TrainConfig) -> int:
    """Steps the schedule spans: cfg.steps, or for a byte budget the batches of seq_bytes it takes (the run
    itself stops on the budget, a step or so either side of this)."""
    if not cfg.by_bytes:
        return cfg.steps
    return max(1, math.ceil(cfg.train_bytes / (cfg.batch_size * cfg.seq_bytes)))


def sequence_tokens(cfg: TrainConfig, bytes_per_token: float) -> int:
    """Tokens per training sequence: cfg.seq_len, or seq_bytes at the training stream's bytes per token."""
    if not cfg.by_bytes:
        return cfg.seq_len
    return max(1, round(cfg.seq_bytes / bytes_per_token))


def lr_at(cfg: TrainConfig, step: int, total_steps: int | None = None) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.min_lr at the last step (total_steps, by default
    cfg.steps); constant min_lr after it."""
    total = cfg.steps if total_steps is None else total_steps
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, total - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def config_record(cfg: TrainConfig) -> dict:
    """The config as plain JSON values (what checkpoints and config.json record)."""
    import json

    return json.loads(json.dumps(asdict(cfg), sort_keys=True))


def same_run(saved: dict, cfg: TrainConfig) -> bool:
    """Whether a checkpoint's recorded config describes the same training as cfg. Keys the checkpoint
    lacks (it predates them) count as their defaults; cosmetic keys are ignored."""
    now = config_record(cfg)
    defaults = config_record(TrainConfig(name=cfg.name, model=cfg.model))
    for key in COSMETIC_KEYS:
        now.pop(key, None)
    return all(saved.get(key, defaults.get(key)) == value for key, value in now.items()) and \
        not (set(saved) - set(now) - set(COSMETIC_KEYS))
