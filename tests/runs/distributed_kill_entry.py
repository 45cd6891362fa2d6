"""A torchrun entry point for tests/runs/test_distributed_torchrun.py: the robustbench CLI, except that on the first
attempt (TORCHELASTIC_RESTART_COUNT 0) rank 1 kills itself with SIGKILL in the middle of cell 2, once rank 0's
shard of that cell is on disk."""

import os
import signal
import time

from robustbench_bytes import runs

from robustbench_bytes.results import shards

_score_share = runs.score_share


def score_share(models, cell, corpus, share, options, desc):
    shard = _score_share(models, cell, corpus, share, options, desc)
    if os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0" and options.world.rank == 1 and desc.startswith("[2/"):
        folder, deadline = shards.shard_dir(options.out, cell.key), time.monotonic() + 60
        while not list(folder.glob("rank-0-*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)
    return shard


runs.score_share = score_share

if __name__ == "__main__":
    from robustbench_bytes.cli import main

    main()
