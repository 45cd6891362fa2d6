"""The committed zoo matches its configs: configs/zoo/NAME.json reproduces robustbench_bytes/zoo/NAME/."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from robustbench_bytes.models import ZOO_DIR
from robustbench_bytes.train import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs" / "zoo").glob("*.json"))


def test_zoo_has_byte_and_subword_models_under_30_mb():
    assert len(CONFIGS) >= 3
    levels = set()
    for path in CONFIGS:
        meta = json.loads((ZOO_DIR / path.stem / "config.json").read_text())["robustbench"]
        levels.add((meta["level"], meta["architecture"]))
    assert {("byte", "mamba"), ("subword", "mamba"), ("subword", "transformer")} <= levels
    total = sum(p.stat().st_size for p in ZOO_DIR.rglob("*") if p.is_file())
    assert total < 30e6
    assert not list(ZOO_DIR.rglob("last.pt")), "training checkpoints must not ship in the zoo"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_zoo_model_was_trained_from_its_config(path):
    cfg = TrainConfig.from_file(path)
    directory = ZOO_DIR / cfg.name
    assert cfg.name == path.stem
    config = json.loads((directory / "config.json").read_text())
    meta = config["robustbench"]
    assert meta["train_config"] == json.loads(json.dumps(asdict(cfg)))
    assert meta["trained_steps"] == cfg.steps
    assert 1_000_000 <= meta["parameters"] <= 5_000_000
    assert (directory / "tokenizer.json").is_file() == (cfg.tokenizer["type"] == "bpe")
    card = (directory / "MODEL_CARD.md").read_text()
    assert f"robustbench train --config configs/zoo/{cfg.name}.json --out robustbench_bytes/zoo/{cfg.name}" in card
    assert f"{meta['parameters']:,}" in card
