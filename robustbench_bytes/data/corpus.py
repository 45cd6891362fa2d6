"""The Corpus type (named documents with provenance) and reading UTF-8 text with one-line errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import read_bytes


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

    def _with(self, documents: list[str], doc_ids: list[str]) -> "Corpus":
        return Corpus(name=self.name, documents=documents, provenance=self.provenance, license=self.license,
                      doc_ids=doc_ids)

    def _ids(self) -> list[str]:
        return self.doc_ids or [str(i) for i in range(len(self.documents))]

    def limit_bytes(self, limit: int | None) -> "Corpus":
        """The first documents up to `limit` UTF-8 bytes in all; the last one cut at a character boundary."""
        if limit is None or self.bytes <= limit:
            return self
        docs, ids, left = [], [], limit
        for doc, doc_id in zip(self.documents, self._ids()):
            if left <= 0:
                break
            docs.append(cut_utf8(doc, left))
            ids.append(doc_id)
            left -= min(left, len(doc.encode("utf-8")))  # a cut inside a character still spends the budget
        return self._with(docs, ids)

    def limit_documents(self, limit: int | None) -> "Corpus":
        """The first `limit` documents (lm-evaluation-harness's --limit)."""
        if limit is None or len(self.documents) <= limit:
            return self
        return self._with(self.documents[:limit], self._ids()[:limit])

    def quick_look(self, documents: int | None = None, document_bytes: int | None = None,
                   total_bytes: int | None = None) -> "Corpus":
        """--limit-documents, then --max-document-bytes, then --limit-bytes (each None: not applied)."""
        return self.limit_documents(documents).max_document_bytes(document_bytes).limit_bytes(total_bytes)

    def max_document_bytes(self, limit: int | None) -> "Corpus":
        """Every document cut to its first `limit` UTF-8 bytes (at a character boundary): a quick look that keeps
        many documents, so that intervals over documents stay intervals."""
        if limit is None or all(len(d.encode("utf-8")) <= limit for d in self.documents):
            return self
        return self._with([cut_utf8(d, limit) for d in self.documents], self._ids())


def cut_utf8(text: str, limit: int) -> str:
    """The longest prefix of text whose UTF-8 encoding has at most `limit` bytes."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def decode_utf8(data: bytes, where: str, errors: str = "strict") -> str:
    """Decode UTF-8; on failure a BadInput naming `where` and the byte offset."""
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        raise BadInput(f"{where}: not valid UTF-8 at byte offset {e.start} "
                       f"(byte 0x{data[e.start]:02x})") from None


def read_text(path: Path, errors: str = "strict") -> str:
    return decode_utf8(read_bytes(path), str(path), errors)


def read_jsonl(path: Path, what: str, expected: str) -> Iterator[tuple[int, Any]]:
    """The JSON value of each non-blank line of a .jsonl file with its line number (1-based). Only "\n" ends a
    line (str.splitlines would also split at U+2028 inside a string). BadInput names the file and line, and
    `expected` (what a line should hold; files.parse_json)."""
    from robustbench_bytes.files import parse_json

    for lineno, line in enumerate(read_bytes(path, what).split(b"\n"), start=1):
        if line.strip():
            yield lineno, parse_json(line, str(path), expected, line=lineno)
