"""A run killed with SIGKILL mid-way resumes to the results of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

from support.run_fakes import make_mamba_checkpoint, write_tiny_corpus  # noqa: E402

TIMING_FIELDS = {"seconds", "bytes_per_second"}
NOISES = ["drop:p=0.1", "antspeak", "swap:p=0.1"]


def grid_args(models, corpus, out):
    args = ["run", "--quiet", "--corpus", str(corpus), "--out", str(out)]
    for m in models:
        args += ["--model", str(m)]
    for n in NOISES:
        args += ["--noise", n]
    return args


def run_cli(args, env):
    return subprocess.run([sys.executable, "-m", "robustbench_bytes", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def comparable(run_dir):
    """results.json and every cell's documents, timings left out."""
    results = json.loads((run_dir / "results.json").read_text())
    cells = {}
    for r in results:
        record = json.loads((run_dir / "cells" / f"{r['cell']}.json").read_text())
        cells[r["cell"]] = (record["inputs"], record["documents"])
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in results], cells


def test_sigkill_mid_run_then_resume_gives_identical_results(tmp_path):
    models = [make_mamba_checkpoint(tmp_path / "m0", seed=0), make_mamba_checkpoint(tmp_path / "m1", seed=1)]
    corpus = write_tiny_corpus(tmp_path / "corpus", n_docs=4, words_per_doc=60)
    n_cells = len(models) * (1 + len(NOISES))
    killed = tmp_path / "killed"

    env = dict(os.environ, MPLCONFIGDIR=str(tmp_path / "mpl"))
    proc = subprocess.Popen([sys.executable, "-m", "robustbench_bytes", *grid_args(models, corpus, killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            cells = killed / "cells"
            if cells.is_dir() and any(p.suffix == ".json" for p in cells.iterdir()):
                break
            time.sleep(0.005)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    done_at_kill = len(list((killed / "cells").glob("*.json")))
    assert 1 <= done_at_kill < n_cells  # really mid-way

    # Every run in a fresh process, like the killed one: the test process's thread settings (other tests
    # change them) would move float sums by an ulp and hide what this test is about.
    resumed = run_cli(grid_args(models, corpus, killed), env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{n_cells - done_at_kill} scored, {done_at_kill} reused" in resumed.stdout + resumed.stderr
    assert not list(killed.glob(".*.tmp")) and not list((killed / "cells").glob(".*.tmp"))

    reference = tmp_path / "reference"
    straight = run_cli(grid_args(models, corpus, reference), env)
    assert straight.returncode == 0, straight.stderr
    assert comparable(killed) == comparable(reference)
