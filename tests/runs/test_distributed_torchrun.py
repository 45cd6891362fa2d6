"""`torchrun -m robustbench_bytes run` over 2 and 3 CPU ranks (gloo) gives the results of one process: the same
results.json metrics (relative 1e-9) and the same per-document NLLs; a rank killed mid-cell is resumed by
torchrun --max-restarts without rescoring the shard that was finished.

The runs use --batch-size 1: a document's NLL then depends on nothing but the document, so "the same" is
bit for bit. With larger batches the documents batched together differ between a rank's share and the whole
corpus, and so does the float32 rounding of the batched products (about one float32 ulp per token)."""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.distributed import DOCS, write_models

pytestmark = pytest.mark.slow  # each launch starts 3-4 Python processes that import torch

METRICS = ("nll", "bytes", "clean_bytes", "clean_words", "tokens", "bits_per_byte", "bits_per_clean_byte",
           "word_perplexity", "byte_perplexity", "documents")
TESTS = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(n: int, args: list[str], tmp_path: Path, entry: list[str] = ("-m", "robustbench_bytes"),
             restarts: int = 0) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", MPLCONFIGDIR=str(tmp_path / "mpl"),
               PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n),
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--max-restarts", str(restarts),
               "--monitor-interval", "0.2", *entry, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)


def one_process(args: list[str], tmp_path: Path):
    """The reference: the same command in one process, with one thread as torchrun gives each rank (the CPU
    scan kernel's vector loops split over threads differently with more)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", MPLCONFIGDIR=str(tmp_path / "mpl"))
    done = subprocess.run([sys.executable, "-m", "robustbench_bytes", *args], capture_output=True, text=True,
                          env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


def cells(run_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    return {r["cell"]: (r, json.loads((run_dir / "cells" / f"{r['cell']}.json").read_text())["documents"])
            for r in results}


def assert_same_run(expected_dir: Path, got_dir: Path):
    expected, got = cells(expected_dir), cells(got_dir)
    assert list(expected) == list(got)
    for key, (want, want_docs) in expected.items():
        have, have_docs = got[key]
        assert have["status"] == want["status"] == "ok"
        for name in METRICS:
            assert math.isclose(have[name], want[name], rel_tol=1e-9), (key, name)
        assert have["positions"] == want["positions"] and have["dtype"] == want["dtype"]
        assert have_docs == want_docs, key  # the same per-document NLLs, sizes and positions


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchrun")
    corpus = root / "corpus"
    corpus.mkdir()
    for i, doc in enumerate(DOCS):
        (corpus / f"doc{i:02d}.txt").write_text(doc, encoding="utf-8")
    return {"root": root, "corpus": corpus, **write_models(root)}


def grid(world, out, *extra):
    return ["run", "--quiet", "--corpus", str(world["corpus"]), "--out", str(out), "--model", world["byte"],
            "--model", world["subword"], "--noise", "swap:p=0.2", "--batch-size", "1", *extra]


@pytest.fixture(scope="module")
def one(world):
    """The grid scored in one process: the reference for the runs over ranks."""
    one_process(grid(world, world["root"] / "one"), world["root"])
    return world["root"] / "one"


def test_two_ranks_equal_one_process(world, one, tmp_path):
    done = torchrun(2, grid(world, tmp_path / "two"), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_run(one, tmp_path / "two")
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["distributed"]["world_size"] == 2
    for cell in manifest["distributed"]["cells"].values():
        assert [r["rank"] for r in cell["ranks"]] == [0, 1]
        assert sum(r["documents"] for r in cell["ranks"]) == len(DOCS)
    assert not list((tmp_path / "two" / "cells").glob("*.shards"))  # merged, then removed


def test_three_ranks_two_documents_of_very_different_lengths(world, tmp_path):
    corpus = tmp_path / "two-docs"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Hi.", encoding="utf-8")
    (corpus / "b.txt").write_text("A long document about owls and foxes. " * 60, encoding="utf-8")
    args = ["run", "--quiet", "--corpus", str(corpus), "--model", world["byte"], "--noise", "drop:p=0.1",
            "--batch-size", "1"]
    one_process(args + ["--out", str(tmp_path / "one")], tmp_path)
    done = torchrun(3, args + ["--out", str(tmp_path / "three")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_run(tmp_path / "one", tmp_path / "three")
    ranks = json.loads((tmp_path / "three" / "manifest.json").read_text())["distributed"]["cells"]
    assert all(sorted(r["documents"] for r in c["ranks"]) == [0, 1, 1] for c in ranks.values())


def test_a_rank_killed_mid_cell_is_resumed_without_rescoring_finished_shards(world, one, tmp_path):
    args = grid(world, tmp_path / "killed")
    done = torchrun(2, args, tmp_path, entry=[str(TESTS / "distributed_kill_entry.py")], restarts=1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_run(one, tmp_path / "killed")
    manifest = json.loads((tmp_path / "killed" / "manifest.json").read_text())["distributed"]["cells"]
    second = list(cells(one))[1]
    assert second in manifest and manifest[second]["reused_documents"] > 0  # rank 0's shard was kept
    scored_again = sum(r["documents"] for r in manifest[second]["ranks"])
    assert scored_again + manifest[second]["reused_documents"] == len(DOCS)
    first = list(cells(one))[0]
    assert first not in manifest  # finished before the kill: reused as a cell
