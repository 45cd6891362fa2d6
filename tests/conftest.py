"""Shared test fixtures: the CLI runner, tiny checkpoints and a small corpus, offline Hugging Face caches, the
browser of the report tests, and a private matplotlib cache."""

from __future__ import annotations

import shutil

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


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """The browser .ci/run installs (Debian's chromium); a test never installs anything itself."""
    found = _chromium()
    if found is None:
        pytest.fail("no Chromium on PATH (chromium, chromium-browser or google-chrome): "
                    "`apt-get install chromium` (.ci/run does) to run the report.html render tests", pytrace=False)
    return found
