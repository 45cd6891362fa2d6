"""The pieces of a distributed run, in one process: the document plan, shares scored with their global
numbers and merged back, shard files, the dtype option, and a rank that stops answering."""

import math
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest

from robustbench_bytes import scoring

from robustbench_bytes.results import shards
from robustbench_bytes.data.corpus import Corpus
from robustbench_bytes.runs.distributed import World
from robustbench_bytes.runs.shares import plan_documents
from robustbench_bytes.errors import BadInput
from robustbench_bytes.models import load_model
from support.distributed import DOCS, free_port, write_models

def test_plan_covers_every_document_once_in_document_order():
    sizes = [len(d.encode()) for d in DOCS]
    for world_size in (1, 2, 3, 8, 20):
        plan = plan_documents(sizes, world_size)
        assert len(plan) == world_size
        assert sorted(i for share in plan for i in share) == list(range(len(DOCS)))
        assert all(share == sorted(share) for share in plan)
        assert plan == plan_documents(list(sizes), world_size)  # deterministic


def test_plan_is_greedy_longest_first_and_balanced():
    sizes = [10, 70, 20, 40, 30, 50, 60]
    plan = plan_documents(sizes, 2)
    loads = [sum(sizes[i] for i in share) for share in plan]
    assert plan[0][0] != plan[1][0] and 1 in plan[0]  # the longest goes first, to rank 0
    assert abs(loads[0] - loads[1]) <= max(sizes)
    assert plan_documents(sizes, 2, indices=[0, 2]) in ([[2], [0]], [[0], [2]])
    assert plan_documents([5, 1], 3)[2] == []  # a rank may have nothing to do


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return write_models(tmp_path_factory.mktemp("dist-models"))


@pytest.mark.parametrize("level", ["byte", "subword"])
@pytest.mark.parametrize("noise", ["clean", "swap:p=0.2"])
def test_shares_scored_apart_merge_into_the_whole_corpus_cell(models, level, noise):
    model = load_model(models[level], "cpu")
    corpus = Corpus("dist", list(DOCS), doc_ids=[f"d{i}" for i in range(len(DOCS))])
    whole = scoring.score_corpus(model, corpus, noise, seed=3, batch_size=1, progress=False)
    sizes = [len(d.encode()) for d in DOCS]
    parts = []
    for rank, share in enumerate(plan_documents(sizes, 3)):
        part = replace(corpus, documents=[DOCS[i] for i in share], doc_ids=[f"d{i}" for i in share])
        scored = scoring.score_corpus(model, part, noise, seed=3, batch_size=1, progress=False, indices=share)
        parts.append(shards.Shard(rank, 3, tuple(scored.documents), scored.result, scored.result.seconds))
    result, documents = shards.merge(parts, corpus)
    assert [d.to_json() for d in documents] == [d.to_json() for d in whole.documents]
    timing = {"seconds", "bytes_per_second"}
    merged = {k: v for k, v in result.to_json().items() if k not in timing}
    assert merged == {k: v for k, v in whole.result.to_json().items() if k not in timing}


def test_merge_refuses_shards_that_miss_a_document(models):
    model = load_model(models["byte"], "cpu")
    corpus = Corpus("dist", DOCS[:3])
    part = replace(corpus, documents=DOCS[:2])
    scored = scoring.score_corpus(model, part, progress=False, indices=[0, 1])
    with pytest.raises(ValueError, match="document 2 is missing"):
        shards.merge([shards.Shard(0, 1, tuple(scored.documents), scored.result)], corpus)


def test_shard_files_round_trip_and_need_the_same_inputs(models, tmp_path):
    model = load_model(models["byte"], "cpu")
    part = Corpus("dist", DOCS[1:3])
    scored = scoring.score_corpus(model, part, progress=False, indices=[1, 2])
    shard = shards.Shard(1, 2, tuple(scored.documents), scored.result, 0.5)
    shards.write_shard(tmp_path, "cell", {"k": 1}, shard)
    shards.write_shard(tmp_path, "cell", {"k": 1}, shards.Shard(0, 2, error="boom"))  # nothing to keep
    (found,) = shards.read_finished(tmp_path, "cell", {"k": 1})
    assert found.to_json() == shard.to_json()
    assert shards.read_finished(tmp_path, "cell", {"k": 2}) == []
    assert sorted(shards.reused_documents([found])) == [1, 2]
    shards.remove_shards(tmp_path, "cell")
    assert not shards.shard_dir(tmp_path, "cell").exists()


def test_dtype_is_recorded_and_checked(models):
    model = load_model(models["byte"], "cpu")
    corpus = Corpus("dist", DOCS[:2])
    assert scoring.score_corpus(model, corpus, progress=False).result.dtype == "float32"
    low = scoring.score_corpus(model, corpus, progress=False, dtype="bfloat16").result
    assert low.dtype == "bfloat16-autocast" and math.isfinite(low.nll)
    with pytest.raises(BadInput, match="dtype='int8'"):
        scoring.score_corpus(model, corpus, progress=False, dtype="int8")


def test_one_process_exchanges_are_the_identity():
    world = World()
    assert world.all_gather({"a": 1}, "x") == [{"a": 1}] and world.broadcast(lambda: 7, "y") == 7
    assert world.is_main and not world.distributed


HANGING_RANK = textwrap.dedent("""
    import sys, time
    from robustbench_bytes.runs.distributed import from_environment, DistributedError
    world, _ = from_environment("cpu", timeout=3)
    world.all_gather(world.rank, "starting")
    if world.rank == 1:
        world._heartbeat.stop()
        time.sleep(20)
        sys.exit(0)
    try:
        world.all_gather(world.rank, "scoring cell 1")
    except DistributedError as e:
        print(e)
        sys.exit(3)
""")


@pytest.mark.slow
def test_a_rank_that_stops_answering_is_named(tmp_path):
    env = dict(os.environ, WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
               OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", HANGING_RANK], env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    try:
        out, err = procs[0].communicate(timeout=60)
    finally:
        procs[1].kill()
        procs[1].wait()
    assert procs[0].returncode == 3, err
    assert "rank 0: rank 1 has not answered for 3 s while scoring cell 1" in out
