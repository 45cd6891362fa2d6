"""Quick looks that keep intervals: --limit-documents / --max-document-bytes on run and score, the corpus cuts
behind them, `run`'s terminal summary (the report's columns; real intervals with 3 documents, n/a with 1) and
its progress bar over the whole grid."""

import json

import pytest

from support.run_fakes import write_tiny_corpus

from robustbench_bytes.cli import cli
from robustbench_bytes.data.corpus import Corpus


def test_corpus_cuts():
    corpus = Corpus("c", ["héllo wörld", "abc", "zzzz"], doc_ids=["a", "b", "c"])
    assert corpus.limit_documents(2).documents == ["héllo wörld", "abc"] and corpus.limit_documents(2).doc_ids == ["a", "b"]
    cut = corpus.max_document_bytes(2)
    assert cut.documents == ["h", "ab", "zz"] and cut.doc_ids == ["a", "b", "c"]  # é is two bytes: not split
    assert all(len(d.encode()) <= 2 for d in cut.documents)
    assert corpus.quick_look(2, 3, 4).documents == ["hé", "a"]  # documents, then each cut, then the total
    assert corpus.quick_look() is corpus and corpus.limit_documents(10) is corpus
    assert corpus.limit_bytes(5).documents == ["héll"]  # unchanged: the first documents up to N bytes


@pytest.fixture
def corpus(tmp_path):
    return write_tiny_corpus(tmp_path / "corpus", n_docs=5, words_per_doc=30)


def _run(runner, tiny_mamba, corpus, out, *options):
    return runner.invoke(cli, ["run", "--model", str(tiny_mamba), "--noise", "drop:p=0.3", "--corpus", str(corpus),
                               "--out", str(out), *options])


def test_run_limit_documents_gives_real_intervals(runner, tiny_mamba, corpus, tmp_path):
    result = _run(runner, tiny_mamba, corpus, tmp_path / "three", "--limit-documents", "3",
                  "--max-document-bytes", "80")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "three" / "results.json").read_text())
    assert {r["documents"] for r in results} == {3} and all(r["clean_bytes"] <= 240 for r in results)
    corpus_record = json.loads((tmp_path / "three" / "manifest.json").read_text())["corpus"]
    assert (corpus_record["limit_documents"], corpus_record["max_document_bytes"], corpus_record["limit_bytes"]) == \
        (3, 80, None)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Leaderboard")
    noisy = next(line for line in lines if "drop:p=0.3" in line)
    assert "[n/a]" not in result.stdout and noisy.count("[") == 2  # rise and word-PPL increase, each [low, high]
    assert "only 3 document(s)" in result.stdout  # rough intervals: said so


def test_one_document_run_prints_na(runner, tiny_mamba, corpus, tmp_path):
    result = _run(runner, tiny_mamba, corpus, tmp_path / "one", "--limit-documents", "1")
    assert result.exit_code == 0, result.output
    noisy = next(line for line in result.stdout.splitlines() if "drop:p=0.3" in line)
    assert noisy.count("[n/a]") == 2
    assert "only 1 document(s)" in result.stdout


def test_score_takes_the_same_cuts(runner, tiny_mamba, corpus):
    result = runner.invoke(cli, ["score", "--model", str(tiny_mamba), "--corpus", str(corpus), "--json", "--quiet",
                                 "--limit-documents", "2", "--max-document-bytes", "50"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert scored["documents"] == 2 and scored["clean_bytes"] <= 100


def test_bad_limit_is_one_line_exit_2(runner, tiny_mamba, corpus, tmp_path):
    result = _run(runner, tiny_mamba, corpus, tmp_path / "bad", "--limit-documents", "0")
    assert result.exit_code == 2 and "--limit-documents" in result.output and "Traceback" not in result.output


class RecordingBar:
    """Stands in for the grid's tqdm bar: records its total, its updates and the lines written above it."""

    made: list["RecordingBar"] = []

    def __init__(self, enabled=True, **options):
        self.options, self.updates, self.lines, self.disable = options, 0, [], not enabled
        RecordingBar.made.append(self)

    def update(self, n=1):
        self.updates += n

    def write(self, message, file=None):
        self.lines.append(message)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_an_outer_bar_counts_the_cells_of_the_grid(runner, tiny_mamba, corpus, tmp_path, monkeypatch):
    import robustbench_bytes.progress as progress
    import robustbench_bytes.scoring  # noqa: F401 (imported first, it keeps the real progress_bar)

    real = progress.progress_bar

    def bar(enabled=True, **options):  # the grid's bar recorded; any other (a cell's) a disabled real one
        return RecordingBar(enabled, **options) if options.get("desc") == "cells" else real(False, **options)

    monkeypatch.setattr(progress, "progress_bar", bar)
    RecordingBar.made = []
    for _ in range(2):  # scored, then every cell reused: the bar counts both
        result = _run(runner, tiny_mamba, corpus, tmp_path / "bar", "--limit-documents", "2")
        assert result.exit_code == 0, result.output
    grids = [bar for bar in RecordingBar.made if bar.options.get("desc") == "cells"]
    assert len(grids) == 2 and all(bar.options["total"] == 2 and bar.updates == 2 for bar in grids)
    assert any("bits/clean byte" in line for line in grids[0].lines)  # per-cell lines go above the bars
    assert any("skipped" in line for line in grids[1].lines)
