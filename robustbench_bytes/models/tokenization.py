"""Tokenizers behind one small interface: raw UTF-8 bytes, or a subword tokenizer (the `tokenizers` library; a
transformers one in models/hf.py shares SubwordTables). Over 300 lines: the one place callers learn what a
tokenizer's ids spell (byte lengths, token bytes, special ids, byte-level BPE or not), so none of them probes.

Both have .level, .vocab_size, encode(text) -> list[int], decode(ids) -> str, prefix_ids (the context
placed before a document's first token), describe_prefix(), and encode_with_byte_lengths(text) -> (ids, the
UTF-8 bytes of `text` each token stands for; they sum to len(text.encode()), for bits by position). Per-model options live in an optional
"robustbench" object of the checkpoint's config.json, e.g. {"robustbench": {"newline": "crlf",
"prefix_byte": 10}}; load_tokenizer(..., **options) overrides them.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from robustbench_bytes.errors import BadInput, first_line
from robustbench_bytes.files import read_json

NEWLINES = ("lf", "crlf")
BPE_VOCAB_FILES = ("vocab.json", "encoder.json")
BPE_MERGES_FILES = ("merges.txt", "vocab.bpe")
# Special-token spellings used when no config names BOS/EOS (GPT-2/NeoX, Llama, SentencePiece styles).
BOS_NAMES = ("<|begin_of_text|>", "<|startoftext|>", "<s>", "<bos>", "[BOS]")
EOS_NAMES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "[EOS]")


class ByteTokenizer:
    """Token = one UTF-8 byte (vocab 256, no offset). newline="crlf" writes each line break as CR LF, as the
    PG19 MambaByte checkpoints saw in training (an existing CR LF stays CR LF)."""

    level = "byte"
    vocab_size = 256
    byte_level_bpe = False
    special_ids: frozenset[int] = frozenset()  # every byte is text
    token_bytes = tuple(bytes([b]) for b in range(256))  # what each id spells

    def __init__(self, newline: str = "lf", prefix_byte: int = 10):
        if newline not in NEWLINES:
            raise ValueError(f"newline={newline!r}; expected one of {', '.join(NEWLINES)}")
        if not (isinstance(prefix_byte, int) and 0 <= prefix_byte < 256):
            raise ValueError(f"prefix_byte={prefix_byte!r}; expected an integer 0..255")
        self.newline = newline
        self.prefix_byte = prefix_byte

    def encode(self, text: str) -> list[int]:
        if self.newline == "crlf":
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        return list(text.encode("utf-8"))

    def encode_with_byte_lengths(self, text: str) -> tuple[list[int], np.ndarray]:
        """encode(text) and each token's bytes of `text`: one each, but 0 for a CR that crlf inserts."""
        data = text.encode("utf-8")
        if self.newline == "lf":
            return list(data), np.ones(len(data), dtype=np.int64)
        ids, lengths = [], []
        for i, b in enumerate(data):
            if b == 10 and (i == 0 or data[i - 1] != 13):
                ids.append(13)
                lengths.append(0)
            ids.append(b)
            lengths.append(1)
        return ids, np.asarray(lengths, dtype=np.int64)

    def encode_bytes(self, text: str) -> bytes:
        """encode() as a bytes object (cheap to turn into a tensor with torch.frombuffer)."""
        return bytes(self.encode(text)) if self.newline == "crlf" else text.encode("utf-8")

    def decode(self, ids) -> str:
        text = bytes(int(i) for i in ids).decode("utf-8", errors="replace")
        return text.replace("\r\n", "\n") if self.newline == "crlf" else text

    @property
    def prefix_ids(self) -> list[int]:
        return [self.prefix_byte]

    def describe_prefix(self) -> str:
        return f"byte {self.prefix_byte} ({_byte_name(self.prefix_byte)})"

    def describe(self) -> dict:
        return {"type": "byte", "vocab_size": 256, "newline": self.newline, "prefix": self.describe_prefix()}

    def __repr__(self):
        return f"ByteTokenizer(newline={self.newline!r}, prefix_byte={self.prefix_byte})"


class SubwordTables:
    """What a subword tokenizer's ids spell, each worked out once per tokenizer. A subclass says where its
    `tokenizers.Tokenizer` is (`_backend()`, None for a slow transformers one) and which ids it names special
    (`_named_special_ids()`); `decode(ids)` spells ids where the vocabulary cannot."""

    level = "subword"
    newline = "lf"  # subword tokenizers write line breaks as the text has them

    def _backend(self):
        raise NotImplementedError

    def _named_special_ids(self) -> set[int]:
        raise NotImplementedError

    @functools.cached_property
    def byte_level_bpe(self) -> bool:
        """Whether it is a GPT-2 style byte-level BPE (each character of a piece stands for one byte)."""
        tok = self._backend()
        return tok is not None and is_byte_level_bpe(tok)

    @functools.cached_property
    def byte_lengths_by_id(self) -> np.ndarray | None:
        """The UTF-8 bytes each id stands for when its vocabulary says it (byte-level BPE, no normalizer), else
        None (then offsets say it, text by text)."""
        tok = self._backend()
        return byte_level_lengths(tok) if tok is not None else None

    @functools.cached_property
    def special_ids(self) -> frozenset[int]:
        """Ids of special tokens (BOS, EOS, pad, ...): text is never made of them."""
        ids = {i for i in self._named_special_ids() if i is not None}
        tok = self._backend()
        if tok is not None and hasattr(tok, "get_added_tokens_decoder"):
            ids |= {i for i, t in tok.get_added_tokens_decoder().items() if getattr(t, "special", True)}
        return frozenset(ids)

    @functools.cached_property
    def token_bytes(self) -> tuple[bytes, ...]:
        """The bytes each id spells, b"" for special tokens. Byte-level BPE pieces map back through GPT-2's
        alphabet exactly (a piece may hold part of a UTF-8 character); other tokenizers' ids are decoded one
        at a time."""
        special, size = self.special_ids, self.vocab_size
        table = [b""] * size
        if self.byte_level_bpe:
            tok = self._backend()
            alphabet = byte_level_alphabet()
            added = tok.get_added_tokens_decoder() if hasattr(tok, "get_added_tokens_decoder") else {}
            for piece, i in tok.get_vocab(with_added_tokens=True).items():
                if i >= size or i in special:
                    continue
                if i in added or any(ch not in alphabet for ch in piece):
                    table[i] = piece.encode("utf-8")  # a plain added token is literal text
                else:
                    table[i] = bytes(alphabet[ch] for ch in piece)
            return tuple(table)
        for i in range(size):
            if i not in special:
                table[i] = self.decode([i]).encode("utf-8")
        return tuple(table)


class SubwordTokenizer(SubwordTables):
    """A `tokenizers.Tokenizer`; documents are encoded without special tokens, and the prefix is [BOS],
    else [EOS], as lm-evaluation-harness's loglikelihood_rolling does."""

    def __init__(self, tokenizer, bos_token_id: int | None = None, eos_token_id: int | None = None,
                 source: str = ""):
        self.tokenizer = tokenizer
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.source = source

    @classmethod
    def from_file(cls, path, **kwargs) -> "SubwordTokenizer":
        """A tokenizer.json file; BOS/EOS found by detect_bos_eos unless given."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path))
        return cls._with_special(tok, path, **kwargs)

    @classmethod
    def from_bpe_files(cls, vocab_path, merges_path, **kwargs) -> "SubwordTokenizer":
        """GPT-2-style byte-level BPE files (vocab.json/encoder.json + merges.txt/vocab.bpe)."""
        from tokenizers import ByteLevelBPETokenizer

        tok = ByteLevelBPETokenizer(str(vocab_path), str(merges_path))
        return cls._with_special(tok, vocab_path, **kwargs)

    @classmethod
    def _with_special(cls, tok, path, bos_token_id=None, eos_token_id=None):
        bos, eos = detect_bos_eos(tok)
        return cls(tok, bos if bos_token_id is None else bos_token_id,
                   eos if eos_token_id is None else eos_token_id, source=str(path))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_with_byte_lengths(self, text: str) -> tuple[list[int], np.ndarray]:
        """encode(text) and the UTF-8 bytes of `text` each token stands for (summing to the text's bytes)."""
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        return encoding.ids, token_byte_lengths(text, encoding.ids, encoding.offsets, self.byte_lengths_by_id)

    def _backend(self):
        return self.tokenizer

    def _named_special_ids(self) -> set[int]:
        return {self.bos_token_id, self.eos_token_id}

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    @property
    def prefix_ids(self) -> list[int]:
        if self.bos_token_id is not None:
            return [self.bos_token_id]
        if self.eos_token_id is not None:
            return [self.eos_token_id]
        raise ValueError(f"{self.source or 'tokenizer'}: no BOS or EOS token to start a document with")

    def describe_prefix(self) -> str:
        kind, tid = ("BOS", self.bos_token_id) if self.bos_token_id is not None else ("EOS", self.eos_token_id)
        if tid is None:
            return "none"
        return f"{kind} {tid} ({self.tokenizer.id_to_token(tid)})"

    def describe(self) -> dict:
        return {"type": "subword", "vocab_size": self.vocab_size, "source": self.source,
                "bos_token_id": self.bos_token_id, "eos_token_id": self.eos_token_id,
                "prefix": self.describe_prefix()}

    def __repr__(self):
        return f"SubwordTokenizer({self.source!r}, bos={self.bos_token_id}, eos={self.eos_token_id})"


def is_byte_level_bpe(tok) -> bool:
    """Whether a `tokenizers.Tokenizer` is a GPT-2 style byte-level BPE: ByteLevel both splits the text into
    bytes (pre-tokenizer) and maps pieces back (decoder)."""
    try:
        spec = json.loads(tok.to_str())
    except Exception:  # a tokenizer that cannot serialise itself: not known to be byte-level
        return False
    kinds = []
    for part in (spec.get("pre_tokenizer"), spec.get("decoder")):
        parts = (part or {}).get("pretokenizers") or (part or {}).get("decoders") or [part or {}]
        kinds.append(any(p.get("type") == "ByteLevel" for p in parts if isinstance(p, dict)))
    return all(kinds)


def byte_level_lengths(tok) -> np.ndarray | None:
    """Byte length of every id of a byte-level BPE `tokenizers.Tokenizer` (GPT-2 style: each character of a
    piece stands for one byte; an added token for its content's UTF-8 bytes); None for other tokenizers and
    for one whose normalizer changes the text before it is split into bytes."""
    if not is_byte_level_bpe(tok) or json.loads(tok.to_str()).get("normalizer") is not None:
        return None
    lengths = np.zeros(tok.get_vocab_size(with_added_tokens=True), dtype=np.int64)
    for piece, tid in tok.get_vocab(with_added_tokens=False).items():
        lengths[tid] = len(piece)
    for tid, added in tok.get_added_tokens_decoder().items():
        lengths[tid] = len(added.content.encode("utf-8"))
    return lengths


@functools.lru_cache(maxsize=1)
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


def token_byte_lengths(text: str, ids, char_offsets, by_id: np.ndarray | None = None) -> np.ndarray:
    """Each token's UTF-8 bytes of `text`: from a byte-level table `by_id` when it accounts for every byte
    of `text`, else from the tokens' (start, end) character offsets: a token ends at its end offset's byte
    and stands for the bytes since the previous token's end (a token that splits a multi-byte character
    ends with it). The lengths always sum to len(text.encode())."""
    n_bytes = len(text.encode("utf-8"))
    ids = np.asarray(ids, dtype=np.int64)
    if by_id is not None and ids.size and ids.max() < len(by_id):
        lengths = by_id[ids]
        if int(lengths.sum()) == n_bytes:
            return lengths
    if not len(ids):
        return np.zeros(0, dtype=np.int64)
    ends_in_chars = np.asarray([end for _, end in char_offsets], dtype=np.int64).clip(0, len(text))
    ends = char_byte_offsets(text)[ends_in_chars]
    ends = np.minimum(np.maximum.accumulate(ends), n_bytes)
    ends[-1] = n_bytes
    return np.diff(ends, prepend=0)


def char_byte_offsets(text: str) -> np.ndarray:
    """The byte offset of every character boundary of `text` (len(text) + 1 values, from 0)."""
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    widths = 1 + (code_points >= 0x80) + (code_points >= 0x800) + (code_points >= 0x10000)
    return np.concatenate([[0], np.cumsum(widths, dtype=np.int64)])


def byte_lengths_by_decoding(decode, ids, text: str, context: int = 8) -> np.ndarray:
    """Each token's bytes from decode-length differences (decode(ids[k-context : k+1]) minus the same
    without token k), for tokenizers that give no offsets; cut so they sum to len(text.encode())."""
    n_bytes = len(text.encode("utf-8"))
    ids = list(ids)
    lengths = []
    for k in range(len(ids)):
        before = ids[max(0, k - context):k]
        lengths.append(len(decode(before + [ids[k]]).encode("utf-8")) - len(decode(before).encode("utf-8")))
    if not lengths:
        return np.zeros(0, dtype=np.int64)
    ends = np.minimum(np.cumsum(np.maximum(lengths, 0)), n_bytes)
    ends[-1] = n_bytes
    return np.diff(ends, prepend=0).astype(np.int64)


def detect_bos_eos(tok) -> tuple[int | None, int | None]:
    """BOS and EOS ids from well-known special-token spellings present in the tokenizer's vocabulary."""
    def first(names):
        for name in names:
            tid = tok.token_to_id(name)
            if tid is not None:
                return tid
        return None

    return first(BOS_NAMES), first(EOS_NAMES)


def load_tokenizer(directory, vocab_size: int, config: dict | None = None, **options):
    """The tokenizer of a checkpoint directory (config: its config.json when already read).

    ByteTokenizer when vocab_size == 256 and the directory has no tokenizer files; else a SubwordTokenizer
    from tokenizer.json, or from GPT-2 BPE files. vocab_size is the model's number of embedding rows (the
    padded size is fine). Options (override config.json's "robustbench" object): newline, prefix_byte for
    bytes; bos_token_id, eos_token_id for subwords. BOS/EOS otherwise come from tokenizer_config.json,
    then config.json's bos_token_id/eos_token_id, then well-known special tokens."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BadInput(f"{directory}: no such model directory")
    config = _read_json_if_present(directory / "config.json") if config is None else config
    block = config.get("robustbench") or {}
    if not isinstance(block, dict):
        raise BadInput(f"{directory / 'config.json'}: key 'robustbench' = {block!r}; expected an object")
    settings = dict(block)
    settings.update({k: v for k, v in options.items() if v is not None})
    tokenizer_json = directory / "tokenizer.json"
    bpe = _bpe_files(directory)
    if vocab_size == 256 and not tokenizer_json.is_file() and bpe is None:
        try:
            return ByteTokenizer(newline=settings.get("newline", "lf"), prefix_byte=settings.get("prefix_byte", 10))
        except ValueError as e:
            raise BadInput(f"{directory / 'config.json'}: robustbench.{e}") from None
    try:
        if tokenizer_json.is_file():
            tok = SubwordTokenizer.from_file(tokenizer_json)
        elif bpe is not None:
            tok = SubwordTokenizer.from_bpe_files(*bpe)
        else:
            raise BadInput(f"{directory}: no tokenizer.json (nor vocab.json + merges.txt) for a model with "
                           f"vocab_size {vocab_size}; only vocab_size 256 models use raw bytes")
    except BadInput:
        raise
    except Exception as e:
        raise BadInput(f"{directory}: unreadable tokenizer ({first_line(e)})") from None
    _apply_special_tokens(tok, directory, config, settings)
    if tok.vocab_size > vocab_size:
        raise BadInput(f"{tok.source}: tokenizer has {tok.vocab_size} tokens but the model's vocab_size is "
                       f"{vocab_size}")
    return tok


def _apply_special_tokens(tok: SubwordTokenizer, directory: Path, config: dict, settings: dict):
    tok_config = _read_json_if_present(directory / "tokenizer_config.json")
    for which in ("bos", "eos"):
        key = f"{which}_token_id"
        if settings.get(key) is not None:
            tid = settings[key]
        elif tok_config.get(f"{which}_token") is not None:
            token = tok_config[f"{which}_token"]
            token = token.get("content") if isinstance(token, dict) else token
            tid = tok.tokenizer.token_to_id(token)
            if tid is None:
                raise BadInput(f"{directory / 'tokenizer_config.json'}: {which}_token {token!r} is not in the "
                               f"tokenizer's vocabulary")
        elif isinstance(config.get(key), int):
            tid = config[key]
        else:
            continue
        if not (isinstance(tid, int) and 0 <= tid < tok.vocab_size):
            raise BadInput(f"{directory}: {key}={tid!r}; expected a token id below {tok.vocab_size}")
        setattr(tok, key, tid)


def _bpe_files(directory: Path):
    vocab = next((directory / n for n in BPE_VOCAB_FILES if (directory / n).is_file()), None)
    merges = next((directory / n for n in BPE_MERGES_FILES if (directory / n).is_file()), None)
    return (vocab, merges) if vocab is not None and merges is not None else None


def _read_json_if_present(path: Path):
    return (read_json(path) or {}) if path.is_file() else {}


def _byte_name(b: int) -> str:
    names = {10: "newline", 13: "carriage return", 0: "NUL", 32: "space", 2: "STX"}
    return names.get(b, repr(chr(b)) if 32 < b < 127 else f"0x{b:02x}")
