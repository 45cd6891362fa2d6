"""Shared by the distributed tests: a free local port for a process group, documents of uneven sizes, and a byte
and a BPE checkpoint to score them with."""

from __future__ import annotations

import socket

import torch

from support.run_fakes import make_mamba_checkpoint

DOCS = ["The quick brown fox jumps over the lazy dog. " * k for k in (1, 9, 2, 30, 0, 5, 3)] + ["Ünïcødé ✓ text"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_models(root) -> dict[str, str]:
    """A byte-level and a BPE Mamba checkpoint under root: {"byte": path, "subword": path}."""
    from tokenizers import Tokenizer, models as tm, pre_tokenizers, trainers

    from robustbench_bytes.models.checkpoint import save_pretrained
    from robustbench_bytes.models.mamba import MambaConfig, MambaLM

    byte = make_mamba_checkpoint(root / "byte", d_model=16)
    tok = Tokenizer(tm.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(DOCS, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    torch.manual_seed(1)
    config = MambaConfig(d_model=16, n_layer=1, vocab_size=tok.get_vocab_size(), ssm_cfg={"d_state": 4})
    save_pretrained(MambaLM(config), root / "subword", config.to_dict(), tok.to_str())
    return {"byte": str(byte), "subword": str(root / "subword")}
