"""What each token id of a subword tokenizer spells, as UTF-8 bytes (special tokens spell nothing)."""

from __future__ import annotations

import json
from functools import lru_cache


@lru_cache(maxsize=1)
def byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet, inverted: the printable character standing for each byte -> the byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def backend(tokenizer):
    """The `tokenizers.Tokenizer` behind one of our tokenizer wrappers, or None (a slow transformers one)."""
    inner = getattr(tokenizer, "tokenizer", None)
    if inner is None:
        return None
    if hasattr(inner, "get_vocab_size") and hasattr(inner, "id_to_token"):
        return inner
    return getattr(inner, "backend_tokenizer", None)


def special_ids(tokenizer) -> set[int]:
    """Ids of special tokens (BOS, EOS, pad, ...): text is never made of them."""
    ids = {i for i in (getattr(tokenizer, "bos_token_id", None), getattr(tokenizer, "eos_token_id", None),
                       getattr(tokenizer, "prefix_id", None)) if i is not None}
    inner = getattr(tokenizer, "tokenizer", None)
    ids |= set(getattr(inner, "all_special_ids", []) or [])
    tok = backend(tokenizer)
    if tok is not None and hasattr(tok, "get_added_tokens_decoder"):
        ids |= {i for i, t in tok.get_added_tokens_decoder().items() if getattr(t, "special", True)}
    return ids


def _is_byte_level(tok) -> bool:
    try:
        spec = json.loads(tok.to_str())
    except Exception:  # a tokenizer that cannot serialise itself: fall back to decoding
        return False
    return "ByteLevel" in json.dumps(spec.get("decoder")) or "ByteLevel" in json.dumps(spec.get("pre_tokenizer"))


@lru_cache(maxsize=8)
def token_bytes(tokenizer) -> list[bytes]:
    """bytes spelled by each id, b"" for special tokens. Byte-level BPE pieces map back through GPT-2's alphabet
    exactly (a piece may hold part of a UTF-8 character); other tokenizers are decoded one token at a time."""
    tok = backend(tokenizer)
    special = special_ids(tokenizer)
    size = tokenizer.vocab_size
    table = [b""] * size
    if tok is not None and _is_byte_level(tok):
        alphabet = byte_level_alphabet()
        added = tok.get_added_tokens_decoder() if hasattr(tok, "get_added_tokens_decoder") else {}
        for piece, i in tok.get_vocab(with_added_tokens=True).items():
            if i >= size or i in special:
                continue
            if i in added or any(ch not in alphabet for ch in piece):
                table[i] = piece.encode("utf-8")  # a plain added token is literal text
            else:
                table[i] = bytes(alphabet[ch] for ch in piece)
        return table
    for i in range(size):
        if i not in special:
            table[i] = tokenizer.decode([i]).encode("utf-8") if hasattr(tokenizer, "decode") else \
                tokenizer.tokenizer.decode([i]).encode("utf-8")
    return table
