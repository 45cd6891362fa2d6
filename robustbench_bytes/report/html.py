"""report.html: the report's Markdown as one self-contained HTML page (plots inlined as SVG, no external assets).

Only the Markdown the report writes is understood: headings, paragraphs, pipe tables, bullet lists, fenced
code, images, links, `code`, **bold**. An image whose SVG sits beside its PNG is inlined as that SVG; any
other local image as a data: URI, so the page reads offline and can be mailed as one file. Headings get the ids
GitHub gives them (heading_ids), so one table of contents links in README.md and in report.html. Tables sit in
a scrolling container that shows a shadow at the edge it can scroll to; their numeric cells wrap between a number
and its [interval], never inside it, so that tables fit a 1400 px window.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 80rem; margin: 2rem auto;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
.scroll { overflow-x: auto; margin: 0.8rem 0;
          background: linear-gradient(to right, #fff 30%, rgba(255,255,255,0)) left / 2rem 100% no-repeat local,
                      linear-gradient(to left, #fff 30%, rgba(255,255,255,0)) right / 2rem 100% no-repeat local,
                      radial-gradient(farthest-side at 0 50%, rgba(0,0,0,.25), rgba(0,0,0,0)) left / 0.7rem 100%
                      no-repeat scroll,
                      radial-gradient(farthest-side at 100% 50%, rgba(0,0,0,.25), rgba(0,0,0,0)) right / 0.7rem 100%
                      no-repeat scroll; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.45rem; vertical-align: top; }
th { background: #f2f2f2; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f4f4f4; padding: 0 0.2rem; }
pre { background: #f4f4f4; padding: 0.6rem; overflow-x: auto; }
pre code { padding: 0; background: none; }
figure { margin: 1rem 0; }
figure svg, figure img { max-width: 100%; height: auto; }
"""

_XML_PROLOGUE = re.compile(r"^\s*(<\?xml[^>]*>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.S)
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
# the link text holds no bracket: in "([0, 64), ... [length.csv](length.csv)" the link is [length.csv] alone
_LINK = re.compile(r"\[([^\[\]]+)\]\(([^)\s]+)\)")
_INTERVAL = re.compile(r"\[[^\[\]<>]*\]")


def headings(lines: list[str]) -> list[tuple[int, str]]:
    """(level, text) of each Markdown heading, outside fenced code, in order."""
    found, fenced = [], False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"(#{1,6}) (.*)", line)):
            found.append((len(m.group(1)), m.group(2)))
    return found


def heading_ids(headings: list[str]) -> list[str]:
    """The anchor ids GitHub gives these headings (Markdown source text), in order: lower case, punctuation
    dropped, spaces as hyphens; a repeated id gets -1, -2, ..."""
    seen: dict[str, int] = {}
    ids = []
    for text in headings:
        base = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        n = seen.get(base, 0)
        seen[base] = n + 1
        ids.append(base if n == 0 else f"{base}-{n}")
    return ids


def _inline(text: str) -> str:
    """Inline Markdown of one line (already split from images) to HTML."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        part = html.escape(part, quote=False).replace("\\|", "|")
        part = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", part)
        part = _LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', part)
        out.append(part)
    return "".join(out)


def _image(alt: str, src: str, base: Path) -> str:
    path = base / src
    svg = path.with_suffix(".svg")
    if svg.is_file():
        body = _XML_PROLOGUE.sub("", svg.read_text(encoding="utf-8"), count=1)
        return f'<figure role="img" aria-label="{html.escape(alt)}">{body}</figure>'
    if path.is_file():
        mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(path.suffix.lower(),
                                                                                        "application/octet-stream")
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<figure><img alt="{html.escape(alt)}" src="data:{mime};base64,{data}"></figure>'
    return f"<p>[missing image: {html.escape(src)}]</p>"


def _paragraph(text: str, base: Path) -> str:
    """A paragraph, with its images as figures (the rest of its text, e.g. an SVG link, dropped with them)."""
    images = list(_IMAGE.finditer(text))
    if images:
        return "\n".join(_image(m.group(1), m.group(2), base) for m in images)
    return f"<p>{_inline(text)}</p>"


def _split_row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|")) if line.strip() != "|" else []
    return [c.strip() for c in cells]


def _table(lines: list[str]) -> str:
    header, rule, body = _split_row(lines[0]), _split_row(lines[1]), [_split_row(x) for x in lines[2:]]
    numeric = [r.endswith(":") and not r.startswith(":") for r in rule]

    def cells(row, tag):
        return "".join(f'<{tag}{" class=num" if i < len(numeric) and numeric[i] else ""}>{_keep_intervals(_inline(c))}'
                       f'</{tag}>' for i, c in enumerate(row))

    return ('<div class="scroll"><table><thead><tr>' + cells(header, "th") + "</tr></thead><tbody>"
            + "".join(f"<tr>{cells(r, 'td')}</tr>" for r in body) + "</tbody></table></div>")


def _keep_intervals(cell: str) -> str:
    """A cell's [low, high] kept on one line (no break inside it), so a cell wraps only between its parts."""
    return _INTERVAL.sub(lambda m: m.group(0).replace(" ", "&nbsp;"), cell)


def markdown_to_html(markdown: str, base: Path, title: str = "Robustness report") -> str:
    """A whole HTML page from the report's Markdown; base: the folder its image paths are relative to."""
    blocks, lines, i = [], markdown.splitlines(), 0
    ids = iter(heading_ids([text for _, text in headings(lines)]))
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            blocks.append("<pre><code>" + html.escape("\n".join(lines[i + 1:j])) + "</code></pre>")
            i = j + 1
        elif m := re.match(r"(#{1,6}) (.*)", line):
            level = len(m.group(1))
            blocks.append(f'<h{level} id="{next(ids)}">{_inline(m.group(2))}</h{level}>')
            i += 1
        elif line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-:| ]+\|$", lines[i + 1].strip()):
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            blocks.append(_table(lines[i:j]))
            i = j
        elif line.startswith("- "):
            j = i
            while j < len(lines) and lines[j].startswith("- "):
                j += 1
            blocks.append("<ul>" + "".join(f"<li>{_inline(x[2:])}</li>" for x in lines[i:j]) + "</ul>")
            i = j
        else:
            j = i
            while j < len(lines) and lines[j].strip() and not re.match(r"(#{1,6} |\||- |```)", lines[j]):
                j += 1
            blocks.append(_paragraph(" ".join(lines[i:j]), base))
            i = max(j, i + 1)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(blocks) + "\n</body>\n</html>\n")
