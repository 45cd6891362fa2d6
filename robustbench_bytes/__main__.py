"""`python -m robustbench_bytes` (and `torchrun ... -m robustbench_bytes`): the same command line as `robustbench`."""

from robustbench_bytes.cli import main

main()
