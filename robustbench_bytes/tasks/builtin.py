"""The built-in offline tasks, made deterministically from the built-in corpora's test splits (no zoo model
trained on them): verse completion on kjv:test and line completion on shakespeare:test.

How an item is made (the same rule for both; no random state, only sha256 of names):
- the eligible texts are the verses of each kjv:test book (one verse a line in the book's document) or the
  lines of each shakespeare:test text that hold lower-case letters and no stage direction ("[...]"; speaker
  names are upper case); each within its task's limits (RULES: kjv-verses 8..20 words and at most 100
  UTF-8 bytes, shakespeare-lines 6..14 words and at most 70 bytes);
- a text of n words is cut after its first n // 2 words: the context is that first part, the true ending the
  rest with its leading space;
- ITEMS texts are taken evenly spaced over all eligible ones (book by book, in order);
- the 3 wrong endings are endings of other eligible texts of the same book or play whose UTF-8 length is
  closest to the true ending's (ties broken by sha256 of the two texts' ids), distinct from it and each other;
- the true ending's position among the 4 is sha256("<task>/<item id>") mod 4.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from robustbench_bytes.data import load_corpus
from robustbench_bytes.tasks.task import Task, TaskItem

ITEMS = 500
N_CHOICES = 4


@dataclass(frozen=True)
class Rule:
    corpus: str
    min_words: int
    max_words: int
    max_bytes: int


RULES = {
    "kjv-verses": Rule("kjv:test", 8, 20, 100),
    "shakespeare-lines": Rule("shakespeare:test", 6, 14, 70),
}

SUMMARIES = {
    "kjv-verses": "KJV verse completion: the first half of a kjv:test verse; its true ending among 4 endings "
                  "of verses of the same book, matched in length",
    "shakespeare-lines": "Shakespeare line completion: the first half of a shakespeare:test line; its true "
                         "ending among 4 endings of lines of the same text, matched in length",
}


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def kjv_texts(document: str) -> list[str]:
    """The verses of a kjv book document: every non-empty line after the book's name."""
    return [line for line in document.split("\n")[1:] if line.strip()]


def shakespeare_texts(document: str) -> list[str]:
    """Lines of a play or poem that are spoken text: not a stage direction, not a speaker's name."""
    out = []
    for line in document.split("\n"):
        text = line.strip()
        if not text or "[" in text or "]" in text or not any(c.islower() for c in text):
            continue
        out.append(text)
    return out


def _eligible(texts: list[str], rule: Rule) -> list[str]:
    return [t for t in texts if rule.min_words <= len(t.split()) <= rule.max_words
            and len(t.encode("utf-8")) <= rule.max_bytes]


def _split(text: str) -> tuple[str, str]:
    words = text.split()
    cut = len(words) // 2
    return " ".join(words[:cut]), " " + " ".join(words[cut:])


def make_task(name: str, documents: list[str], doc_ids: list[str], items: int = ITEMS) -> Task:
    """The task `name` (a key of RULES) from the documents of its corpus, by the rule in this module's
    docstring."""
    rule = RULES[name]
    extract = kjv_texts if rule.corpus.startswith("kjv") else shakespeare_texts
    pool = []  # (item id, group, context, ending)
    for doc_id, document in zip(doc_ids, documents):
        for k, text in enumerate(_eligible(extract(document), rule)):
            context, ending = _split(text)
            pool.append((f"{doc_id}/{k}", doc_id, context, ending))
    if len(pool) < items:
        raise ValueError(f"task {name}: {rule.corpus} gives only {len(pool)} eligible texts for {items} items")
    by_group: dict[str, list[tuple]] = {}
    for entry in pool:
        by_group.setdefault(entry[1], []).append(entry)
    picked = [pool[(i * len(pool)) // items] for i in range(items)]
    out = []
    for item_id, group, context, ending in picked:
        size = len(ending.encode("utf-8"))
        others = sorted((e for e in by_group[group] if e[0] != item_id and e[3] != ending),
                        key=lambda e: (abs(len(e[3].encode("utf-8")) - size), _digest(f"{item_id}|{e[0]}")))
        wrong: list[str] = []
        for e in others:
            if e[3] not in wrong:
                wrong.append(e[3])
            if len(wrong) == N_CHOICES - 1:
                break
        label = _digest(f"{name}/{item_id}") % N_CHOICES
        choices = wrong[:label] + [ending] + wrong[label:]
        out.append(TaskItem(context, tuple(choices), label, item_id))
    return Task(name=name, items=tuple(out), description=SUMMARIES[name] + f" ({items} items, from {rule.corpus})",
                provenance=f"made from the built-in corpus {rule.corpus} by robustbench_bytes.tasks.builtin",
                license="public domain")


@lru_cache(maxsize=None)
def load_builtin(name: str) -> Task:
    corpus = load_corpus(RULES[name].corpus)
    return make_task(name, corpus.documents, list(corpus.doc_ids))


def loaders() -> dict:
    """name -> (one-line summary, loader) of each built-in task, for tasks.py to register."""
    return {name: (SUMMARIES[name], lambda name=name: load_builtin(name)) for name in RULES}
