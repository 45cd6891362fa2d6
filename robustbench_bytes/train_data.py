"""Training data: corpora to one token stream, the trainer's tokenizers, and random training windows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from robustbench_bytes.corpora import Corpus, load_corpus
from robustbench_bytes.errors import BadInput

EOT = "<|endoftext|>"
BYTE_PREFIX = [10]  # a newline byte: the byte models' context before a document


def load_corpora(specs: list[str]) -> Corpus:
    docs, ids = [], []
    for spec in specs:
        corpus = load_corpus(spec)
        docs += corpus.documents
        ids += [f"{spec}/{d}" for d in (corpus.doc_ids or range(len(corpus.documents)))]
    return Corpus(name="+".join(specs), documents=docs, doc_ids=ids)


@dataclass
class TokenizerInfo:
    """What training needs from a tokenizer: encode, vocabulary size, the document prefix, and how many UTF-8
    bytes each token id stands for (0 for special tokens)."""

    kind: str
    vocab_size: int
    prefix_ids: list[int]
    encode: Callable[[str], list[int]]
    token_bytes: list[int]
    json: str | None = None  # tokenizer.json text for subword tokenizers


def byte_tokenizer() -> TokenizerInfo:
    return TokenizerInfo("bytes", 256, list(BYTE_PREFIX), lambda text: list(text.encode("utf-8")), [1] * 256)


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
    # byte-level BPE spells each byte as one character of its alphabet: a token's length is its byte count
    special = set(tok.get_added_tokens_decoder()) if hasattr(tok, "get_added_tokens_decoder") else {eot}
    sizes = [0] * tok.get_vocab_size()
    for piece, i in tok.get_vocab().items():
        sizes[i] = 0 if i in special else len(piece)
    return TokenizerInfo("bpe", tok.get_vocab_size(), [eot],
                         lambda text: tok.encode(text, add_special_tokens=False).ids, sizes, tokenizer_json)


def token_stream(tokenizer: TokenizerInfo, documents: list[str]) -> torch.Tensor:
    ids: list[int] = []
    for doc in documents:
        ids += tokenizer.prefix_ids
        ids += tokenizer.encode(doc)
    return torch.tensor(ids, dtype=torch.long)


def bytes_per_token(tokenizer: TokenizerInfo, stream: torch.Tensor) -> float:
    sizes = torch.tensor(tokenizer.token_bytes, dtype=torch.long)
    return float(sizes[stream].sum()) / max(1, len(stream))


def sample_batch(stream: torch.Tensor, gen: torch.Generator, batch: int, seq_len: int) -> torch.Tensor:
    """`batch` random windows of seq_len + 1 tokens (inputs and shifted targets)."""
    if len(stream) < seq_len + 2:
        raise BadInput(f"training data: {len(stream)} tokens, fewer than seq_len + 2 = {seq_len + 2}")
    starts = torch.randint(0, len(stream) - seq_len - 1, (batch,), generator=gen)
    return torch.stack([stream[s: s + seq_len + 1] for s in starts.tolist()])


def cut_to_budget(batch: torch.Tensor, target_bytes: torch.Tensor, seen: int, budget: int | None
                  ) -> tuple[torch.Tensor, int]:
    """The batch's first rows that bring the bytes seen to the budget (all rows when there is none or it
    is not reached), and the bytes their targets hold. target_bytes: (batch,) bytes of each row's targets."""
    cumulative = torch.cumsum(target_bytes, 0)
    if budget is not None and seen + int(cumulative[-1]) > budget:
        rows = int(torch.searchsorted(cumulative, budget - seen)) + 1
        return batch[:rows], int(cumulative[rows - 1])
    return batch, int(cumulative[-1])


def limit_documents(docs: list[str], limit: int | None) -> list[str]:
    if limit is None:
        return docs
    return Corpus(name="", documents=docs).limit_bytes(limit).documents
