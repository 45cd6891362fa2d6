"""The drafter of speculative decoding: a subword model proposing the next bytes, kept in step with the text.

Its context is the committed text's bytes up to a split point, as tokens; the bytes after the split point (the
last word, with its leading space: b" beginn" when the prompt ends mid-word) are `pending`: the next drafted
tokens must spell them first (token healing), so the drafter never conditions on a half-word token it would
not have chosen itself. What it proposes is what its tokens spell beyond the pending bytes.
"""

from __future__ import annotations

import re
from functools import lru_cache

import torch

from robustbench_bytes.generation.sampling import choose

LAST_WORD = re.compile(rb" ?\S{0,63}\Z")  # held back at a split point (capped: a run with no spaces)


def split_point(data: bytes) -> int:
    """Where the held-back last word of `data` starts."""
    return LAST_WORD.search(data).start()


@lru_cache(maxsize=8)
def _index(tokenizer):
    """(bytes of each token, token ids by first byte, a cache of masks by pending bytes) of a tokenizer."""
    table = tokenizer.token_bytes
    by_first: dict[int, list[int]] = {}
    for i, b in enumerate(table):
        if b:
            by_first.setdefault(b[0], []).append(i)
    return table, by_first, {}


class Drafter:
    def __init__(self, model, temperature: float = 0.0, top_k: int | None = None,
                 generator: torch.Generator | None = None):
        self.model, self.decoder = model, model.make_decoder()
        self.table, self.by_first, self.masks = _index(model.tokenizer)
        self.stop = model.tokenizer.special_ids
        self.temperature, self.top_k, self.generator = temperature, top_k, generator
        self.fed = 0  # bytes of the committed text covered by the drafter's tokens
        self.pending = b""
        self.logits = None  # after the drafter's last token
        self.saved = None
        self.draft: list[int] = []

    def _encode(self, data: bytes) -> list[int]:
        return self.model.tokenizer.encode(data.decode("utf-8", errors="replace")) if data else []

    def start(self, context: bytes) -> None:
        """The drafter's context becomes the model's prefix + `context` (the prompt, UTF-8)."""
        cut = split_point(context)
        self.logits = self.decoder.prefill(list(self.model.tokenizer.prefix_ids) + self._encode(context[:cut]))
        self.fed, self.pending = cut, context[cut:]

    def _allowed(self, rest: bytes) -> torch.Tensor | None:
        """Mask of the tokens consistent with the pending bytes still to spell, None if no token is."""
        key = (rest, str(self.logits.device))
        if key not in self.masks:
            ok = [i for i in self.by_first.get(rest[0], ())
                  if self.table[i].startswith(rest) or rest.startswith(self.table[i])]
            mask = None
            if ok:
                mask = torch.zeros(self.logits.shape[-1], dtype=torch.bool)
                mask[ok] = True
                mask = mask.to(self.logits.device)
            if len(self.masks) > 4096:
                self.masks.clear()
            self.masks[key] = mask
        return self.masks[key]

    def propose(self, n_tokens: int) -> tuple[bytes, bool]:
        """Drafts n_tokens tokens from the current context; returns (the bytes they add beyond the pending ones,
        whether the draft ended early at a special token). The context is saved first and the last drafted token
        is not fed yet: accept_all() or resync() settles it."""
        self.saved = (self.decoder.save(), self.logits)
        covered, rest, ended, logits = bytearray(), self.pending, False, self.logits  # covered: bytes past `fed`
        self.draft, self.draft_ends = [], []
        for k in range(n_tokens):
            row = logits
            if rest:
                mask = self._allowed(rest)
                if mask is None:  # no token spells the pending bytes: feed them as they are instead
                    logits = row = self.decoder.prefill(self._encode(rest))
                    covered += rest
                    rest = b""
                else:
                    row = logits.masked_fill(~mask, float("-inf"))
            token = choose(row, self.temperature, self.top_k, self.generator)
            if token in self.stop or not self.table[token]:
                ended = True
                break
            piece = self.table[token]
            rest = rest[len(piece):] if rest.startswith(piece) else b""
            covered += piece
            self.draft.append(token)
            self.draft_ends.append(len(covered) - len(self.pending))  # where it ends in the proposed bytes
            if k + 1 < n_tokens:
                logits = self.decoder.step(token)
        self._covered = len(covered)
        return bytes(covered[len(self.pending):]), ended

    def accept_all(self) -> None:
        """The whole draft was accepted: feed its last token; the tokens now spell the committed text exactly."""
        self.logits = self.decoder.step(self.draft[-1])
        self.fed += self._covered
        self.pending = b""

    def resync(self, committed) -> None:
        """The text is now `committed` (prompt + continuation, UTF-8 bytes; only its part after `fed` is read):
        back to the context saved before the draft, then feed the new text up to its new split point."""
        state, self.logits = self.saved
        self.decoder.restore(state)
        tail = bytes(committed[self.fed:])
        cut = split_point(tail)
        ids = self._encode(tail[:cut])
        if ids:
            self.logits = self.decoder.prefill(ids)
        self.fed, self.pending = self.fed + cut, tail[cut:]
