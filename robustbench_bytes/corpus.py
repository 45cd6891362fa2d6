"""The Corpus type (named documents with provenance) and reading UTF-8 text with one-line errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

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
