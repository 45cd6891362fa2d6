"""An architecture is one registry entry (models/architectures.py): registering one makes its directories load,
score and generate, and `robustbench train` train it, with no other edit."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from robustbench_bytes.errors import BadInput
from robustbench_bytes.generation.decoders import StreamDecoder
from robustbench_bytes.models import checkpoint, load_model
from robustbench_bytes.models.architectures import ARCHITECTURES, Architecture, register_architecture
from robustbench_bytes.training import train
from support.train_configs import tiny


@dataclass
class BigramConfig:
    vocab_size: int

    REQUIRED = ("vocab_size",)

    @classmethod
    def from_dict(cls, config: dict) -> "BigramConfig":
        return cls(config["vocab_size"])

    def to_dict(self) -> dict:
        return {"architecture": "bigram", "vocab_size": self.vocab_size}


class Bigram(torch.nn.Module):
    def __init__(self, config: BigramConfig):
        super().__init__()
        self.config = config
        self.table = torch.nn.Embedding(config.vocab_size, config.vocab_size)

    def forward(self, ids):
        return self.table(ids)


def load_bigram(opened) -> Bigram:
    network = Bigram(BigramConfig.from_dict(opened.config))
    network.load_state_dict(checkpoint.load_weights(opened.weights))
    return network


def streamed(model) -> None:
    model.stream = lambda ids, state: (model.module(ids), state)
    model.vocab_size = model.module.config.vocab_size


@pytest.fixture
def bigram():
    entry = register_architecture(Architecture("bigram", BigramConfig, Bigram, load_bigram, streamed,
                                               model_type="bigram-lm"))
    yield entry
    ARCHITECTURES.pop("bigram")


def test_a_registered_architecture_loads_scores_and_decodes(bigram, tmp_path):
    torch.manual_seed(0)
    network = Bigram(BigramConfig(256))
    checkpoint.save_pretrained(network, tmp_path / "m", network.config.to_dict())
    model = load_model(str(tmp_path / "m"))
    assert (model.architecture, model.level, model.vocab_size) == ("bigram", "byte", 256)
    ids = torch.tensor([list(b"abc")])
    assert torch.equal(model.stream(ids, None)[0], network(ids))
    assert isinstance(model.make_decoder(), StreamDecoder)


def test_a_registered_architecture_trains_into_a_directory_that_loads(bigram, tmp_path):
    cfg = tiny("mamba", "bytes", model={"architecture": "bigram"}, steps=2, checkpoint_every=2)
    train(cfg, tmp_path / "out", quiet=True)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (config["architecture"], config["model_type"]) == ("bigram", "bigram-lm")
    assert load_model(str(tmp_path / "out")).architecture == "bigram"


def test_an_unregistered_architecture_is_refused(tmp_path):
    with pytest.raises(BadInput, match="must be one of mamba, transformer"):
        tiny("mamba", "bytes", model={"architecture": "bigram"})
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "bigram", "vocab_size": 256}))
    with pytest.raises(BadInput, match=r"architecture 'bigram' is not supported \(expected mamba or transformer"):
        load_model(str(tmp_path))
