"""Corpora: a built-in name, a text file (one document), a directory of .txt files (one document
each, sorted by path) or a .jsonl file with a `text` field."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from robustbench_bytes.errors import BadInput


@dataclass(frozen=True)
class Corpus:
    name: str
    documents: list[str]
    provenance: str = ""
    license: str = ""
    doc_ids: list[str] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        for doc in self.documents:
            data = doc.encode("utf-8")
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
        return h.hexdigest()

    @property
    def bytes(self) -> int:
        return sum(len(d.encode("utf-8")) for d in self.documents)

    def limit_bytes(self, limit: int | None) -> "Corpus":
        """The first documents up to `limit` UTF-8 bytes in all; the last one cut at a character boundary."""
        if limit is None or self.bytes <= limit:
            return self
        docs, ids, left = [], [], limit
        for doc, doc_id in zip(self.documents, self.doc_ids or [str(i) for i in range(len(self.documents))]):
            if left <= 0:
                break
            data = doc.encode("utf-8")[:left]
            docs.append(data.decode("utf-8", errors="ignore"))
            ids.append(doc_id)
            left -= len(data)
        return Corpus(name=self.name, documents=docs, provenance=self.provenance, license=self.license,
                      doc_ids=ids)


# name -> loader(); filled by robustbench_bytes.builtin_corpora
BUILTIN: dict[str, Callable[[], Corpus]] = {}


def decode_utf8(data: bytes, where: str, errors: str = "strict") -> str:
    """Decode UTF-8; on failure a BadInput naming `where` and the byte offset."""
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        raise BadInput(f"{where}: not valid UTF-8 at byte offset {e.start} "
                       f"(byte 0x{data[e.start]:02x})") from None


def read_text(path: Path, errors: str = "strict") -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, expected a file") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror})") from None
    return decode_utf8(data, str(path), errors)


def _load_jsonl(path: Path) -> Corpus:
    docs, ids = [], []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInput(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise BadInput(f"{path}:{lineno}: expected an object with a string field 'text'")
        docs.append(obj["text"])
        ids.append(str(obj.get("id", lineno)))
    return Corpus(name=str(path), documents=docs, provenance=f"jsonl file {path}", doc_ids=ids)


def load_corpus(spec: str) -> Corpus:
    """Resolve a corpus name or path. Raises BadInput on anything unusable."""
    if spec in BUILTIN:
        return BUILTIN[spec]()
    if not BUILTIN:
        import robustbench_bytes.builtin_corpora  # noqa: F401  (registers the built-ins)

        if spec in BUILTIN:
            return BUILTIN[spec]()
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise BadInput(f"{path}: directory holds no .txt files")
        return Corpus(name=str(path), documents=[read_text(p) for p in files],
                      provenance=f"directory {path}", doc_ids=[str(p.relative_to(path)) for p in files])
    if path.suffix == ".jsonl" and path.is_file():
        return _load_jsonl(path)
    if path.is_file():
        return Corpus(name=str(path), documents=[read_text(path)], provenance=f"text file {path}",
                      doc_ids=[path.name])
    known = ", ".join(sorted(BUILTIN)) or "none"
    raise BadInput(f"corpus {spec!r}: no such built-in corpus (known: {known}) and no such file or directory")
