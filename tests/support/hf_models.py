"""Tiny random Hugging Face checkpoints made offline from transformers' own classes."""

from __future__ import annotations

from pathlib import Path

TEXT = ("Now the serpent was more subtil than any beast of the field which the LORD God had made. "
        "And he said unto the woman, Yea, hath God said, Ye shall not eat of every tree of the garden? ")


def make_tiny_gpt2(folder: Path, seed: int = 0) -> Path:
    """A 2-layer GPT-2 with a 300-token byte-level BPE trained on TEXT, saved in transformers' layout."""
    import tokenizers
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                             initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TEXT] * 3, trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                                eos_token="<|endoftext|>")
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=16, n_embd=32, n_layer=2,
                                     n_head=2, bos_token_id=0, eos_token_id=0)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder
