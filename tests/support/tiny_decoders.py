"""Tiny random-weight models ready for generation (LoadedModel): byte and subword Mamba and GPT, a byte Mamba that
writes spaces, and the small BPE they share; the weights are spread so that greedy decoding has clear choices."""

from __future__ import annotations

import torch

from robustbench_bytes.models.base import LoadedModel, count_parameters
from robustbench_bytes.models.mamba import MambaConfig, MambaLM
from robustbench_bytes.models.tokenization import ByteTokenizer, SubwordTokenizer
from robustbench_bytes.models.transformer import GPT, GPTConfig

TEXT = ("In the beginning God created the heaven and the earth. And the earth was without form, and void; "
        "and darkness was upon the face of the deep. Über café naïve déjà vu: 日本語のテキスト, emoji 🙂 and "
        "ﬁne ligatures. Shall I compare thee to a summer's day? Thou art more lovely and more temperate.\n")


def perturb(module, seed, scale):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return module.eval()


def loaded(module, tokenizer, level, architecture, name):
    return LoadedModel(name=name, level=level, architecture=architecture, module=module, tokenizer=tokenizer,
                       device=torch.device("cpu"), checkpoint_sha256="", source=name,
                       parameters=count_parameters(module))


def tiny_byte_mamba(seed=0, d_model=32, n_layer=2):
    torch.manual_seed(seed)
    cfg = MambaConfig(d_model=d_model, n_layer=n_layer, vocab_size=256, ssm_cfg={"d_state": 8},
                      rms_norm=False, tie_embeddings=False)
    module = perturb(MambaLM(cfg), seed, 0.3)  # spread the logits: random weights alone give near-uniform ones
    return loaded(module, ByteTokenizer(), "byte", "mamba", f"tiny-byte-mamba-{seed}")


class SpaceyMamba(MambaLM):
    """A random byte Mamba that writes a space after every byte divisible by 5: random weights alone almost never
    produce the spaces and newlines at which speculative decoding hands back to the drafter."""

    def forward(self, ids, state=None):
        logits, state = super().forward(ids, state)
        logits[..., 32] += 100.0 * (ids % 5 == 0)
        return logits, state

    def step(self, ids, state):
        logits, state = super().step(ids, state)
        logits[..., 32] += 100.0 * (ids % 5 == 0)
        return logits, state


def spacey_byte_mamba(seed=0):
    base = tiny_byte_mamba(seed)
    module = SpaceyMamba(base.module.config)
    module.load_state_dict(base.module.state_dict())
    return loaded(module.eval(), ByteTokenizer(), "byte", "mamba", f"spacey-byte-mamba-{seed}")


def tiny_byte_gpt(seed=0, block_size=128):
    torch.manual_seed(seed)
    module = perturb(GPT(GPTConfig(vocab_size=256, block_size=block_size, n_layer=2, n_head=2, d_model=32)), seed, 0.2)
    return loaded(module, ByteTokenizer(), "byte", "transformer", f"tiny-byte-gpt-{seed}")


BPE = {}


def tiny_bpe():
    if "tok" not in BPE:
        from robustbench_bytes.training.data import train_bpe

        BPE["json"] = train_bpe([TEXT] * 4, 320)
        from tokenizers import Tokenizer

        BPE["tok"] = Tokenizer.from_str(BPE["json"])
    return SubwordTokenizer(BPE["tok"], eos_token_id=BPE["tok"].token_to_id("<|endoftext|>"))


def tiny_subword_mamba(seed=1):
    tok = tiny_bpe()
    torch.manual_seed(seed)
    cfg = MambaConfig(d_model=32, n_layer=2, vocab_size=tok.vocab_size, ssm_cfg={"d_state": 8})
    return loaded(perturb(MambaLM(cfg), seed, 0.3), tok, "subword", "mamba", f"tiny-bpe-mamba-{seed}")


def tiny_subword_gpt(seed=2, block_size=32):
    tok = tiny_bpe()
    torch.manual_seed(seed)
    module = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=block_size, n_layer=2, n_head=2, d_model=32))
    return loaded(perturb(module, seed, 0.2), tok, "subword", "transformer", f"tiny-bpe-gpt-{seed}")
