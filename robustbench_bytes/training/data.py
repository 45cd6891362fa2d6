"""Training data: corpora to one token stream, the trainer's tokenizers, and random training windows."""

from __future__ import annotations

import torch

from robustbench_bytes.data import Corpus, load_corpus
from robustbench_bytes.errors import BadInput
from robustbench_bytes.models.tokenization import ByteTokenizer, SubwordTokenizer

EOT = "<|endoftext|>"
BYTE_PREFIX = [10]  # a newline byte: the byte models' context before a document


def load_corpora(specs: list[str]) -> Corpus:
    docs, ids = [], []
    for spec in specs:
        corpus = load_corpus(spec)
        docs += corpus.documents
        ids += [f"{spec}/{d}" for d in (corpus.doc_ids or range(len(corpus.documents)))]
    return Corpus(name="+".join(specs), documents=docs, doc_ids=ids)


def byte_tokenizer() -> ByteTokenizer:
    return ByteTokenizer(prefix_byte=BYTE_PREFIX[0])


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


def bpe_tokenizer(tokenizer_json: str) -> SubwordTokenizer:
    """The trained BPE behind the same interface as every model's tokenizer; end-of-text is the prefix."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    eot = tok.token_to_id(EOT)
    if eot is None:
        raise BadInput(f"tokenizer.json: no {EOT!r} token")
    return SubwordTokenizer(tok, bos_token_id=None, eos_token_id=eot, source="tokenizer trained by robustbench train")


def tokenizer_kind(tokenizer) -> str:
    """How training configs and records name a tokenizer: "bytes" or "bpe"."""
    return "bytes" if tokenizer.level == "byte" else "bpe"


def tokenizer_json(tokenizer) -> str | None:
    """tokenizer.json text of a subword tokenizer (None for bytes)."""
    return tokenizer.tokenizer.to_str() if tokenizer.level == "subword" else None


def target_byte_sizes(tokenizer) -> torch.Tensor:
    """UTF-8 bytes of text each token id stands for as a training target; the document prefix stands for none."""
    if tokenizer.level == "byte":
        return torch.ones(256, dtype=torch.long)
    sizes = tokenizer.byte_lengths_by_id
    if sizes is None:
        raise BadInput(f"{tokenizer.source}: not a byte-level BPE; training counts bytes per token from one")
    sizes = torch.from_numpy(sizes.copy())
    sizes[tokenizer.prefix_ids] = 0
    return sizes


def token_stream(tokenizer, documents: list[str]) -> torch.Tensor:
    ids: list[int] = []
    for doc in documents:
        ids += tokenizer.prefix_ids
        ids += tokenizer.encode(doc)
    return torch.tensor(ids, dtype=torch.long)


def bytes_per_token(sizes: torch.Tensor, stream: torch.Tensor) -> float:
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
