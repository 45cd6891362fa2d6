"""robustbench-bytes: how language models degrade under synthetic character noise."""

import os

# torch and numba each bring an OpenMP runtime whose idle threads spin after every parallel region, on the
# cores the other runtime is about to use; passive waiting made chunked scoring 1.7x faster on a loaded
# 2-core machine (bench/results/model.md) and decoding about 5x (bench/results/generate.md). It only takes
# effect before torch or numba are imported; a user's own value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
