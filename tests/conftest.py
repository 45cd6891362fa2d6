"""Shared test fixtures: the CLI runner, tiny checkpoints and a small corpus, and a private matplotlib cache."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from support.run_fakes import make_mamba_checkpoint, write_tiny_corpus


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def tiny_mamba(tmp_path):
    """A random-weight byte-level mamba_ssm checkpoint directory."""
    return make_mamba_checkpoint(tmp_path / "tiny-mamba")


@pytest.fixture
def tiny_corpus(tmp_path):
    """A folder of four small .txt documents."""
    return write_tiny_corpus(tmp_path / "tiny-corpus")


@pytest.fixture
def hf_offline(tmp_path, monkeypatch):
    """transformers, datasets and lm-eval read local files only (their *_OFFLINE switches), caches in tmp_path."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))


@pytest.fixture(autouse=True)
def _private_matplotlib_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path_factory.getbasetemp() / "mpl"))
