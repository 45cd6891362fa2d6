"""robustbench-bytes: how language models degrade under synthetic character noise."""

__version__ = "0.1.0"
