"""The committed zoo matches its configs: configs/zoo/NAME.json reproduces robustbench_bytes/zoo/NAME/."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from support.train_configs import ESTHER, tiny

from robustbench_bytes.models import ZOO_DIR
from robustbench_bytes.training import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "zoo").glob("*.json"))


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


def test_the_zoo_is_fair():
    """Every model saw the same training bytes (within one sequence), in sequences of about the same bytes, on
    the same data, with parameter counts within 25% of each other."""
    metas = [json.loads((ZOO_DIR / p.stem / "config.json").read_text())["robustbench"] for p in CONFIGS]
    seen = [m["train_bytes"] for m in metas]
    assert max(seen) - min(seen) <= max(m["train_length_bytes"] for m in metas)
    assert len({tuple(m["train_data"]) for m in metas}) == 1
    params = [m["parameters"] for m in metas]
    assert max(params) <= 1.25 * min(params)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_zoo_model_was_trained_from_its_config(path):
    cfg = TrainConfig.from_file(path)
    directory = ZOO_DIR / cfg.name
    assert cfg.name == path.stem
    config = json.loads((directory / "config.json").read_text())
    meta = config["robustbench"]
    assert meta["train_config"] == json.loads(json.dumps(asdict(cfg)))
    if cfg.by_bytes:  # a byte budget: the bytes seen end within one sequence of it
        assert cfg.train_bytes <= meta["train_bytes"] < cfg.train_bytes + 2 * cfg.seq_bytes
        assert abs(meta["train_length_bytes"] - cfg.seq_bytes) <= 0.02 * cfg.seq_bytes
    else:
        assert meta["trained_steps"] == cfg.steps
    assert meta["train_data"] == cfg.data["train"]
    assert 2_000_000 <= meta["parameters"] <= 5_000_000
    assert (directory / "tokenizer.json").is_file() == (cfg.tokenizer["type"] == "bpe")
    card = (directory / "README.md").read_text()
    assert card == (directory / "MODEL_CARD.md").read_text()
    assert f"robustbench train --config configs/zoo/{cfg.name}.json --out robustbench_bytes/zoo/{cfg.name}" in card
    assert f"{meta['parameters']:,}" in card
    front = front_matter(card)
    assert front["license"] == "mit" and front["datasets"] == ["kjv", "shakespeare"]
    assert config.get("model_type") == ("mamba" if meta["architecture"] == "mamba" else None)


def front_matter(card: str) -> dict:
    """The YAML metadata block of a Hugging Face model card."""
    yaml = pytest.importorskip("yaml", reason="PyYAML (installed with transformers in [dev]) reads the card")
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def test_a_trained_directory_has_a_hugging_face_card_and_still_loads(tmp_path):
    from robustbench_bytes.models import load_model
    from robustbench_bytes.training import train

    cfg = tiny("mamba", "bytes", steps=2, eval_every=2, checkpoint_every=2, eval_bytes=300,
               data={**ESTHER, "test": ["kjv:validation"]})
    train(cfg, tmp_path / "m", quiet=True)
    card = (tmp_path / "m" / "README.md").read_text()
    front = front_matter(card)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert front["license"] == "mit" and front["datasets"] == ["kjv"] and "bits_per_byte" in front["metrics"]
    (result,) = front["model-index"][0]["results"]
    assert result["dataset"]["name"] == "kjv:validation"
    assert result["metrics"][0]["value"] == config["robustbench"]["test_bits_per_byte"]["kjv:validation"]
    assert config["model_type"] == "mamba" and "## Training data" in card and "## Evaluation" in card
    assert (tmp_path / "m" / "MODEL_CARD.md").read_text() == card
    model = load_model(str(tmp_path / "m"))  # model_type does not make it look like a Hugging Face folder
    assert model.architecture == "mamba" and model.level == "byte"


DRAFTER_CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "zoo" / "drafters").glob("*.json"))


@pytest.mark.parametrize("path", DRAFTER_CONFIGS, ids=[p.stem for p in DRAFTER_CONFIGS])
def test_a_drafter_is_a_tenth_of_the_byte_verifier_with_the_zoos_tokenizer_and_bytes(path):
    from robustbench_bytes.models import DRAFTERS_DIR, drafter_names, zoo_names

    cfg = TrainConfig.from_file(path)
    directory = DRAFTERS_DIR / cfg.name
    assert cfg.name in drafter_names() and cfg.name not in zoo_names()  # kept out of the default grid
    meta = json.loads((directory / "config.json").read_text())["robustbench"]
    assert meta["train_config"] == json.loads(json.dumps(asdict(cfg)))
    zoo = {p.stem: json.loads((ZOO_DIR / p.stem / "config.json").read_text())["robustbench"] for p in CONFIGS}
    verifier = next(m for m in zoo.values() if m["level"] == "byte")
    assert 0.05 <= meta["parameters"] / verifier["parameters"] <= 0.15
    assert meta["train_data"] == verifier["train_data"]
    assert abs(meta["train_bytes"] - verifier["train_bytes"]) <= max(meta["train_length_bytes"],
                                                                     verifier["train_length_bytes"])
    same_family = [name for name, m in zoo.items() if m["level"] == "subword" and m["architecture"] == "mamba"]
    assert (directory / "tokenizer.json").read_bytes() == (ZOO_DIR / same_family[0] / "tokenizer.json").read_bytes()
    card = (directory / "README.md").read_text()
    assert f"--out robustbench_bytes/zoo/drafters/{cfg.name}" in card and f"{meta['parameters']:,}" in card
    assert not list(directory.rglob("last.pt"))
