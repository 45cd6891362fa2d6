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


def byte_tokenizer(specials=("<pad>", "<s>", "</s>", "<boe>")):
    """A byte-level tokenizer of the `tokenizers` library: the specials, then one token per byte (ByteLevel's
    characters, no merges), as byte-level models (BLT: 4 specials then the 256 bytes) number them."""
    import tokenizers
    import transformers

    alphabet = tokenizers.pre_tokenizers.ByteLevel.alphabet()
    byte_chars = sorted(alphabet, key=lambda c: _BYTE_OF[c])
    vocab = {s: i for i, s in enumerate(specials)} | {c: len(specials) + i for i, c in enumerate(byte_chars)}
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    tok.add_special_tokens(list(specials))
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=specials[0], bos_token=specials[1],
                                                eos_token=specials[2])


def _byte_of_char() -> dict[str, int]:
    """ByteLevel's printable stand-in character of each byte (GPT-2's table)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


_BYTE_OF = _byte_of_char()


def make_tiny_blt(folder: Path, seed: int = 0) -> Path:
    """A random Byte Latent Transformer (transformers' BltForCausalLM) a few hundred thousand parameters small,
    with a byte tokenizer (4 specials, then bytes), saved in transformers' layout."""
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    small = dict(hidden_size=32, num_attention_heads=2, num_hidden_layers=1, intermediate_size=64,
                 max_position_embeddings=256)
    config = transformers.BltConfig(
        vocab_size=260, max_position_embeddings=256, encoder_hash_byte_group_vocab=64,
        encoder_config=dict(small, hidden_size_global=48, vocab_size=260),
        decoder_config=dict(small, hidden_size_global=48, vocab_size=260),
        global_config=dict(small, hidden_size=48), patcher_config=dict(small, vocab_size=260),
        pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    transformers.BltForCausalLM(config).save_pretrained(folder)
    byte_tokenizer().save_pretrained(folder)
    return folder
