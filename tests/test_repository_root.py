"""Python started from the repository root (`python -m pytest`, `python -m robustbench_bytes`, torchrun) puts the
root first on sys.path: nothing there may answer for an installed distribution (transformers 5 imports the
`kernels` distribution; a root-level `kernels/` folder once answered instead)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from support.hf_models import TEXT, make_tiny_gpt2

ROOT = Path(__file__).resolve().parent.parent


def from_root(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH="")
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=240, **kwargs)


def importable(folder: Path) -> set[str]:
    """Names a sys.path entry `folder` answers with a module or a regular package (a folder without
    __init__.py is at most a namespace portion, which an installed regular package wins over)."""
    return {p.stem if p.suffix == ".py" else p.name for p in folder.iterdir()
            if p.suffix == ".py" or (p / "__init__.py").is_file()}


@pytest.mark.parametrize("folder", [ROOT, ROOT / "tests"], ids=["root", "tests (pytest's pythonpath)"])
def test_no_folder_on_sys_path_shadows_an_installed_distribution(folder):
    installed = set(metadata.packages_distributions()) - {"robustbench_bytes"}
    shadowed = importable(folder) & installed
    assert not shadowed, f"{folder} shadows installed packages: {sorted(shadowed)}"


def test_python_from_the_root_imports_the_installed_kernels_and_the_projects_kernel():
    pytest.importorskip("transformers")
    try:
        installed = Path(metadata.distribution("kernels").locate_file("kernels/__init__.py")).resolve()
    except metadata.PackageNotFoundError:
        pytest.skip("the kernels distribution is not installed (transformers < 5.25 does not need it)")
    code = ("import kernels, robustbench_bytes.kernels as ours, transformers.integrations.hub_kernels; "
            "print(kernels.__file__); print(ours.__file__)")
    done = from_root([sys.executable, "-c", code])
    assert done.returncode == 0, done.stderr[-2000:]
    theirs, ours = (Path(line) for line in done.stdout.split())
    assert theirs.resolve() == installed
    assert ours.parent.name == "kernels" and ours.parent.parent.name == "robustbench_bytes"


@pytest.fixture(scope="module")
def hf_model_and_text(tmp_path_factory):
    pytest.importorskip("transformers")
    base = tmp_path_factory.mktemp("root")
    (base / "text.txt").write_text(TEXT, encoding="utf-8")
    return make_tiny_gpt2(base / "gpt2"), base / "text.txt"


def test_python_m_score_of_an_hf_model_from_the_root(hf_model_and_text):
    model, text = hf_model_and_text
    done = from_root([sys.executable, "-m", "robustbench_bytes", "score", "--model", f"hf:{model}",
                      "--corpus", str(text), "--json", "--quiet"])
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["bytes"] == len(TEXT.encode()) and result["nll"] > 0


@pytest.mark.slow
def test_torchrun_from_the_root(hf_model_and_text, tmp_path):
    model, text = hf_model_and_text
    done = from_root([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1", "--standalone",
                      "-m", "robustbench_bytes", "run", "--model", f"hf:{model}", "--corpus", str(text),
                      "--noise", "antspeak", "--out", str(tmp_path / "run"), "--quiet"])
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [r["noise"] for r in results] == ["clean", "antspeak"]
