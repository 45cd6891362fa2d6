"""report.html: the Markdown converter (tables, inline SVG, no external assets) and a render in headless
Chromium (a screenshot that is not blank, no console errors), Chromium run once per session.

Chromium is Debian's `chromium` package, installed by .ci/run; without it the render tests fail with one line
naming the missing browser (never skipped, never installed by a test)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from support.run_fakes import write_fake_run

from robustbench_bytes import report
from robustbench_bytes.report.html import markdown_to_html
from robustbench_bytes.report.options import ReportOptions

BPCB = {
    "clean": {"byte-m": 2.0, "bpe-m": 1.8},
    "drop:p=0.05": {"byte-m": 2.1, "bpe-m": 2.2},
    "drop:p=0.3": {"byte-m": 2.6, "bpe-m": 3.1},
    "antspeak": {"byte-m": 3.0, "bpe-m": 6.0},
}
PROBE = "robustbench-console-probe"


@pytest.fixture(scope="module")
def html_report(tmp_path_factory):
    base = tmp_path_factory.mktemp("html")
    os.environ.setdefault("MPLCONFIGDIR", str(tmp_path_factory.getbasetemp() / "mpl"))  # as conftest.py
    write_fake_run(base / "run", BPCB, n_docs=8)
    written = report.write_report([base / "run"], base / "report", ReportOptions(replicates=100))
    return written


def test_html_holds_the_tables_and_every_plot_inline(html_report):
    page = html_report["html"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    svgs = [p for p in html_report["plots"] if p.suffix == ".svg"]
    assert page.count("<svg") == len(svgs) == 4
    rules = [line for line in html_report["readme"].read_text().splitlines() if line.startswith("|---")]
    assert page.count("<table>") == len(rules) >= 5
    board = html_report["leaderboard"]
    assert re.search(r"<td class=num>1</td><td>" + re.escape(board.entries[0].label) + "</td>", page)
    assert '<h2 id="leaderboard">Leaderboard</h2>' in page


def test_html_needs_nothing_from_outside(html_report):
    page = html_report["html"].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page and "<script" not in page and "@import" not in page
    assert "plots/" not in re.sub(r'href="plots/[^"]+"', "", page)  # images inlined, only links point there


def test_markdown_to_html_escapes_and_falls_back_to_data_uris(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    page = markdown_to_html("# T <x>\n\n| a \\| b | n |\n|---|---:|\n| `c<d>` | 1 |\n\n"
                            "![alt](plots/a.png)\n\n- **bold** [link](f.csv)\n", tmp_path)
    assert '<h1 id="t-x">T &lt;x&gt;</h1>' in page and "<th>a | b</th><th class=num>n</th>" in page
    assert "<code>c&lt;d&gt;</code>" in page and 'src="data:image/png;base64,' in page
    assert "<li><strong>bold</strong> <a href=\"f.csv\">link</a></li>" in page


def test_a_link_after_bracketed_text_keeps_the_brackets(tmp_path):
    """The length section's paragraph: "[0, 64), [64, 128)" are ranges, not the start of the link."""
    from robustbench_bytes.report.length import length_section

    paragraph = ("Bits per byte of the tokens ending in each byte-offset bucket of the scored (noised) text ([0, 64), "
                 "[64, 128), [128, 256), ...), against the offset. Every bucket: [length.csv](length.csv).")
    page = markdown_to_html(paragraph, tmp_path)
    assert "([0, 64), [64, 128), [128, 256), ...)" in page
    assert '<a href="length.csv">length.csv</a>' in page and page.count("<a ") == 1
    import inspect
    assert "([0, 64), \"\n          \"[64, 128)" in inspect.getsource(length_section)  # the report's own wording


def test_headings_get_githubs_ids_and_the_contents_link_every_section(html_report):
    from robustbench_bytes.report.html import heading_ids

    assert heading_ids(["Leaderboard", "`drop:p=0.3` against clean", "Plots", "Plots"]) == \
        ["leaderboard", "dropp03-against-clean", "plots", "plots-1"]
    readme = html_report["readme"].read_text(encoding="utf-8")
    contents = next(line for line in readme.splitlines() if line.startswith("Contents: "))
    page = html_report["html"].read_text(encoding="utf-8")
    targets = re.findall(r"\]\(#([^)]+)\)", contents)
    assert len(targets) == len(re.findall(r"^## ", readme, flags=re.M)) >= 5
    for target in targets:
        assert f'id="{target}"' in page and f'href="#{target}"' in page


@pytest.fixture(scope="module")
def rendered(chromium, html_report, tmp_path_factory):
    """One Chromium run: the report inside a frame of a page whose probe script logs one console error, so a
    capture that sees nothing cannot pass for a clean page. Network is off: the page must render offline."""
    base = tmp_path_factory.mktemp("render")
    wrapper = base / "wrapper.html"
    wrapper.write_text(f"<!DOCTYPE html><html><body style='margin:0'><script>console.error('{PROBE}')</script>"
                       f"<iframe src='{html_report['html'].resolve().as_uri()}' style='border:0;width:1200px;"
                       "height:2400px'></iframe></body></html>", encoding="utf-8")
    shot = base / "shot.png"
    profile = base / "profile"
    proc = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={profile}", "--allow-file-access-from-files",
                           "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
                           f"--screenshot={shot}", "--window-size=1200,2400",
                           wrapper.as_uri()], capture_output=True, text=True, timeout=180)
    return proc, shot


def test_chromium_renders_a_non_blank_page_without_console_errors(rendered):
    import numpy as np
    from matplotlib.image import imread

    proc, shot = rendered
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    ink = (pixels.mean(axis=-1) < 0.9).mean()  # share of pixels that are not (near) white
    assert ink > 0.02, f"screenshot looks blank ({ink:.4f} of pixels inked)"
    sample = np.round(pixels[::3, ::3].reshape(-1, 3) * 255).astype(np.int64)
    colours = np.unique(sample @ np.array([1 << 16, 1 << 8, 1]))
    assert len(colours) > 50  # text, tables and coloured plots, not one fill
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert any(PROBE in line for line in console), "console capture saw nothing: " + proc.stderr[-2000:]
    errors = [line for line in console if PROBE not in line]
    assert not errors, errors
