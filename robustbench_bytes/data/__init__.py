"""Naming a corpus: a registered name (the built-ins and installed plug-ins), a text file (one document), a
directory of .txt files (one document each, sorted by path) or a .jsonl file with a `text` field.

Plug-ins: the entry-point group `robustbench_bytes.corpora`; an entry point gives a function of no arguments
returning a Corpus (or a list of document strings), called when the corpus is first named."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from robustbench_bytes.data import builtin as builtin_corpora
from robustbench_bytes.data.corpus import Corpus, decode_utf8, read_jsonl, read_text
from robustbench_bytes.errors import BadInput, printable
from robustbench_bytes.plugins import Registry, guarded, text_problem, type_name

__all__ = ["CORPORA", "Corpus", "decode_utf8", "load_corpus", "read_text", "register_corpus", "require_text"]


def _accept_loader(name: str, obj: object) -> Callable[[], Corpus]:
    if isinstance(obj, Corpus):
        return lambda: obj
    if not callable(obj):
        raise TypeError(f"expected a function returning a Corpus, got {type(obj).__name__}")

    def load() -> Corpus:
        value = obj()
        if isinstance(value, (list, tuple)) and all(isinstance(d, str) for d in value):
            return Corpus(name=name, documents=list(value), provenance=f"corpus plug-in {name}")
        return value  # a Corpus, or what _corpus_problem names

    return load


def _corpus_problem(value) -> str | None:
    """What is wrong with a plug-in's corpus (None: nothing): it must be a Corpus of str documents of valid
    Unicode, with one str id per document or none."""
    if not isinstance(value, Corpus):
        return f"{type_name(value)}; expected a Corpus or a list of strings"
    if not isinstance(value.documents, list):
        return f"a Corpus whose documents are a {type(value.documents).__name__}; expected a list of str"
    for i, doc in enumerate(value.documents):
        why = text_problem(doc)
        if why:
            return f"a Corpus whose document {i} is {why}"
    ids = value.doc_ids
    if ids and not (isinstance(ids, list) and len(ids) == len(value.documents) and all(isinstance(d, str) for d in ids)):
        return "a Corpus whose doc_ids are not one str per document"
    return None


def _guard(load: Callable[[], Corpus], where: str) -> Callable[[], Corpus]:
    return guarded(where, load, "its loader", _corpus_problem)


CORPORA: Registry[Callable[[], Corpus]] = Registry("corpus", "robustbench_bytes.corpora", _accept_loader,
                                                   guard=_guard)


def register_corpus(name: str, loader: Callable[[], Corpus]) -> None:
    """Adds a corpus from code (what the entry-point group does for an installed package), checked the same way."""
    CORPORA.register(name, _guard(_accept_loader(name, loader), f"corpus {name!r}"))


for _name, _loader in builtin_corpora.loaders().items():
    CORPORA.register(_name, _loader)


def _load_jsonl(path: Path) -> Corpus:
    docs, ids = [], []
    for lineno, obj in read_jsonl(path, "corpus file (.jsonl)", "an object with a string field 'text'"):
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise BadInput(f"{path}:{lineno}: expected an object with a string field 'text'")
        docs.append(obj["text"])
        ids.append(str(obj.get("id", lineno)))
    return Corpus(name=str(path), documents=docs, provenance=f"jsonl file {path}", doc_ids=ids)


def _document_name(file: Path, folder: Path) -> str:
    """A document's id: its path in the corpus folder, which results record (so it must be UTF-8)."""
    name = str(file.relative_to(folder))
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{printable(str(file))}: a file name that is not valid UTF-8; rename it (document "
                       f"names are recorded with the results)") from None
    return name


def require_text(corpus: Corpus, spec: str) -> Corpus:
    """The corpus, or BadInput when there is nothing to score in it."""
    if not corpus.documents:
        raise BadInput(f"corpus {spec!r}: holds no documents")
    if corpus.bytes == 0:
        raise BadInput(f"corpus {spec!r}: every document is empty")
    return corpus


def load_corpus(spec: str) -> Corpus:
    """Resolve a corpus name or path. Raises BadInput on anything unusable."""
    if spec in CORPORA:
        return CORPORA[spec]()
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise BadInput(f"{path}: directory holds no .txt files")
        ids = [_document_name(p, path) for p in files]
        return Corpus(name=str(path), documents=[read_text(p) for p in files],
                      provenance=f"directory {path}", doc_ids=ids)
    if path.suffix == ".jsonl" and path.is_file():
        return _load_jsonl(path)
    if path.is_file():
        return Corpus(name=str(path), documents=[read_text(path)], provenance=f"text file {path}",
                      doc_ids=[path.name])
    known = ", ".join(sorted(CORPORA)) or "none"
    raise BadInput(f"corpus {spec!r}: no such built-in corpus (known: {known}) and no such file or directory")
