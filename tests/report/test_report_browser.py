"""report.html in a real browser (headless Chromium, as .ci/run installs it; without it the test fails with one
line, never skipped, never installed here): at 1400 px nothing overflows the page outside the scrolling
containers and the tables fit without scrolling, every image loads, and every table-of-contents link resolves.

Measured offline: a copy of the page with a script that writes its measurements into the DOM on load, read back
with --dump-dom (the report itself holds no script)."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess

import pytest

from support.run_fakes import write_fake_run
from support.task_cells import write_task_cells

from robustbench_bytes import report
from robustbench_bytes.report.options import ReportOptions

MODELS = {"gpt-bpe-kjv-shakespeare": 2.09, "mamba-bpe-kjv-shakespeare": 1.71, "mambabyte-kjv-shakespeare": 1.78}
NOISES = {"drop:p=0.05": 0.5, "drop:p=0.3": 1.5, "repeat:p=0.05,max=3": 1.3, "repeat:p=0.3,max=3": 7.0,
          "antspeak": 8.0, "uppercase:p=0.05": 0.8, "uppercase:p=0.3": 3.4, "random_case": 4.5,
          "swap:p=0.05": 1.2, "swap:p=0.3": 4.0}
WIDTH = 1400

PROBE = """
<script>
window.addEventListener("load", () => {
  const root = document.documentElement, width = root.clientWidth;
  const scrollers = [...document.querySelectorAll(".scroll, pre")];
  const inside = el => scrollers.some(s => s !== el && s.contains(el));
  const overflow = [...document.body.querySelectorAll("*")]
    .filter(el => !inside(el) && el.getBoundingClientRect().right > width + 0.5)
    .map(el => el.tagName + ": " + (el.textContent || "").slice(0, 60));
  const out = {
    width: width, pageScrollWidth: root.scrollWidth, overflow: overflow,
    scrollers: scrollers.map(s => ({tag: s.tagName, overflowX: getComputedStyle(s).overflowX,
                                    scrollWidth: s.scrollWidth, clientWidth: s.clientWidth,
                                    text: (s.textContent || "").slice(0, 60)})),
    images: [...document.images].map(i => ({ok: i.complete && i.naturalWidth > 0, alt: i.alt})),
    figures: [...document.querySelectorAll("figure")].map(f => {
      const r = (f.querySelector("svg, img") || f).getBoundingClientRect();
      return {w: r.width, h: r.height, label: f.getAttribute("aria-label") || ""};
    }),
    links: [...document.querySelectorAll('a[href^="#"]')].map(a => ({
      href: a.getAttribute("href"), found: !!document.getElementById(decodeURIComponent(a.hash.slice(1)))})),
  };
  const pre = document.createElement("pre");
  pre.id = "robustbench-measure";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


@pytest.fixture(scope="module")
def wide_report(tmp_path_factory):
    """A report as wide as the default one: three models with long names, the paper's ten noises, two tasks."""
    base = tmp_path_factory.mktemp("browser")
    os.environ.setdefault("MPLCONFIGDIR", str(tmp_path_factory.getbasetemp() / "mpl"))
    bpcb = {"clean": dict(MODELS)}
    bpcb.update({noise: {m: clean + rise for m, clean in MODELS.items()} for noise, rise in NOISES.items()})
    write_fake_run(base / "run", bpcb, n_docs=13)
    write_task_cells(base / "run", {"clean": 0.45, "antspeak": 0.3, "random_case": 0.35}, n=150,
                     model="mambabyte-kjv-shakespeare")
    return report.write_report([base / "run"], base / "report", ReportOptions(replicates=50))


@pytest.fixture(scope="module")
def measured(chromium, wide_report, tmp_path_factory):
    page = wide_report["html"].read_text(encoding="utf-8")
    probe = tmp_path_factory.mktemp("probe") / "report.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                           f"--user-data-dir={probe.parent / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
                           f"--window-size={WIDTH},1000", "--virtual-time-budget=10000", "--dump-dom",
                           probe.as_uri()], capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="robustbench-measure">(.*?)</pre>', proc.stdout, re.S)
    assert found, "no measurements in Chromium's DOM: " + proc.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


def test_nothing_overflows_1400_px_outside_the_scrolling_containers(measured):
    assert WIDTH - 20 <= measured["width"] <= WIDTH
    assert measured["pageScrollWidth"] <= measured["width"], measured["overflow"][:5]
    assert measured["overflow"] == []


def test_every_table_fits_and_every_container_can_scroll(measured):
    tables = [s for s in measured["scrollers"] if s["tag"] == "DIV"]
    assert len(tables) >= 8
    assert all(s["overflowX"] in ("auto", "scroll") for s in measured["scrollers"])
    too_wide = [s["text"] for s in tables if s["scrollWidth"] > s["clientWidth"]]
    assert too_wide == []


def test_every_image_loads(measured, wide_report):
    pngs = [p for p in wide_report["plots"] if p.suffix == ".png"]
    assert len(measured["figures"]) == len(pngs) >= 5
    assert all(f["w"] > 200 and f["h"] > 100 for f in measured["figures"]), measured["figures"]
    assert all(i["ok"] for i in measured["images"])


def test_every_contents_link_resolves(measured, wide_report):
    links = measured["links"]
    sections = re.findall(r"^## ", wide_report["readme"].read_text(encoding="utf-8"), flags=re.M)
    assert len(links) >= len(sections) >= 6
    assert [link["href"] for link in links if not link["found"]] == []
