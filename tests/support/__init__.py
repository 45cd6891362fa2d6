"""Builders shared by several test modules (tiny checkpoints, corpora); not tests themselves."""
