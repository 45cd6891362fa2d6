"""Bridges to other evaluation tools: lm_eval.py makes our models an lm-evaluation-harness model."""
