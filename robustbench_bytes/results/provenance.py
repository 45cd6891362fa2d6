"""What a run directory's manifest.json records: package and library versions, git hash, device, inputs."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from robustbench_bytes import __version__
from robustbench_bytes.results.schema import CLEAN, CLEAN_SEED, RUN_FORMAT

LIBRARIES = ("torch", "numpy", "pandas", "matplotlib", "click", "tqdm", "tokenizers", "safetensors",
             "triton", "numba", "transformers")


@functools.lru_cache(maxsize=1)
def git_hash() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        tracked = subprocess.run(["git", "-C", str(here), "ls-files", "--error-unmatch", "__init__.py"],
                                 capture_output=True, text=True, timeout=5)
        if out.returncode != 0 or tracked.returncode != 0:  # not a checkout of this package (an install inside
            return None                                     # someone's repository is not their commit)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def _library_versions() -> tuple:
    from importlib import metadata

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return tuple(versions.items())


def library_versions() -> dict[str, str]:
    return dict(_library_versions())


def device_description(device: str) -> str:
    if device.startswith("cuda"):
        try:
            import torch

            return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
        except Exception:  # a description only: the run itself reports a broken device
            return device
    return f"{device} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def now() -> str:
    """The time a manifest records (UTC, to the second)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


PLUGIN_GROUPS = ("robustbench_bytes.noises", "robustbench_bytes.models", "robustbench_bytes.corpora",
                 "robustbench_bytes.tasks")


def installed_plugins() -> list[dict]:
    """Every installed plug-in (noise, model source, corpus, task): its entry point and the distribution, with
    its version, that ships it (None where the entry point does not say)."""
    from importlib import metadata

    found = []
    for group in PLUGIN_GROUPS:
        for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            found.append({"group": group, "name": ep.name, "value": ep.value,
                          "distribution": dist.metadata["Name"] if dist is not None else None,
                          "version": dist.version if dist is not None else None})
    return found


def software_record() -> dict:
    """What every manifest records of the software: this package (version, git commit or null), Python, the
    platform, the libraries and the installed plug-ins with their distributions' versions."""
    return {
        "package": {"name": "robustbench-bytes", "version": __version__, "git": git_hash()},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
        "plugins": installed_plugins(),
    }


def grid_record(grid, options, models: dict[str, dict], started: str, finished: str | None) -> dict:
    """What every manifest records of a grid (of perplexity or task cells: each has model, noise, seed and key):
    the software and machine, the models with their fingerprints, the noises, seeds and cells, the command line
    and the times. models: spec -> {"model_fingerprint", "checkpoint_sha256", "files"} as far as known."""
    return {
        **software_record(),
        "device": device_description(options.device),
        "batch_size": options.batch_size,
        "seeds": sorted({c.seed for c in grid if c.noise != CLEAN}) or [CLEAN_SEED],
        "models": [{"model": m, **models.get(m, {})} for m in dict.fromkeys(c.model for c in grid)],
        "noises": list(dict.fromkeys(c.noise for c in grid)),
        "cells": [c.key for c in grid],
        "command_line": options.command_line,
        "started": started,
        "finished": finished,
    }


def build_manifest(grid, corpus, options, scoring_version: str, models: dict[str, dict],
                   started: str, finished: str | None) -> dict:
    """manifest.json of a perplexity run: the grid's record, the scoring version and the corpus."""
    return {
        "format": RUN_FORMAT,
        **grid_record(grid, options, models, started, finished),
        "scoring_version": scoring_version,
        "corpus": {"name": corpus.name, "sha256": corpus.sha256, "documents": len(corpus.documents),
                   "bytes": corpus.bytes, "limit_bytes": options.limit_bytes,
                   "limit_documents": options.limit_documents, "max_document_bytes": options.max_document_bytes,
                   "provenance": corpus.provenance, "license": corpus.license},
    }
