"""The model registry: zoo names, local directories, list_models and `robustbench models`."""

import json
from pathlib import Path

import pytest
import torch

import robustbench_bytes.models as registry
from robustbench_bytes.cli import cli
from robustbench_bytes.errors import BadInput
from robustbench_bytes.models import checkpoint
from robustbench_bytes.models.architectures import load_network
from robustbench_bytes.models.transformer import GPT, GPTConfig


def weights_sha256(directory):
    from robustbench_bytes.files import sha256_file
    from robustbench_bytes.models.checkpoint import weight_file

    return sha256_file(weight_file(directory))


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """A zoo with one byte GPT, saved as `robustbench train` saves (config + robustbench meta + provenance)."""
    monkeypatch.setattr(registry, "ZOO_DIR", tmp_path)
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=256, block_size=16, n_layer=1, n_head=1, d_model=8)
    model = GPT(config)
    saved = dict(config.to_dict(), robustbench={"level": "byte", "parameters": model.num_parameters()},
                 provenance="trained in a test")
    checkpoint.save_pretrained(model, tmp_path / "tiny-gpt", saved)
    (tmp_path / "not-a-model").mkdir()
    return tmp_path, model


def test_zoo_name_resolves_and_is_listed(zoo):
    folder, gpt = zoo
    assert registry.zoo_names() == ["tiny-gpt"]
    loaded = registry.load_model("tiny-gpt")
    assert loaded.name == "tiny-gpt" and loaded.source == "zoo:tiny-gpt"
    assert loaded.level == "byte" and loaded.architecture == "transformer" and loaded.max_length == 16
    assert loaded.parameters == gpt.num_parameters()
    assert loaded.info["provenance"] == "trained in a test"
    assert loaded.checkpoint_sha256 == weights_sha256(folder / "tiny-gpt")
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(loaded.window(ids, torch.ones_like(ids)), gpt.eval()(ids))
    entry = next(e for e in registry.list_models() if e["name"] == "tiny-gpt")
    assert entry["parameters"] == gpt.num_parameters()  # counted from the file header: tied head once
    assert entry["level"] == "byte" and entry["architecture"] == "transformer"
    assert entry["size_bytes"] == sum(p.stat().st_size for p in (folder / "tiny-gpt").iterdir())


def test_models_command_table_and_json(zoo, runner):
    table = runner.invoke(cli, ["models"])
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split()[:4] == ["name", "level", "architecture", "parameters"]
    assert any(line.startswith("tiny-gpt") for line in table.stdout.splitlines())
    assert "trained in a test" not in table.stdout and max(map(len, table.stdout.splitlines())) <= 100
    long = runner.invoke(cli, ["models", "--long"])
    assert long.exit_code == 0, long.output
    lines = long.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("tiny-gpt"))
    assert lines[at + 1].strip() == "trained in a test"
    listed = json.loads(runner.invoke(cli, ["models", "--json"]).stdout)
    assert "tiny-gpt" in [e["name"] for e in listed]


def test_unknown_model_names_the_known_ones(zoo):
    with pytest.raises(BadInput, match=r"no such zoo model \(known: tiny-gpt"):
        registry.load_model("no-such-model")


def test_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "rwkv", "vocab_size": 256}))
    with pytest.raises(BadInput, match="architecture 'rwkv' is not supported"):
        registry.load_model(str(tmp_path))


def test_smollm2_is_listed_when_installed():
    from robustbench_bytes.models import hf

    names = [e["name"] for e in registry.list_models()]
    assert (hf.SMOLLM2_NAME in names) == (hf.smollm2_gguf() is not None)


def test_model_type_alone_does_not_claim_a_hugging_face_folder(tmp_path):
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "config.json").write_text(json.dumps({"model_type": "mamba", "d_model": 8, "vocab_size": 256}))
    (ours / "model.safetensors").write_bytes(b"")  # never read: the config is refused first
    with pytest.raises(BadInput, match="missing required field 'n_layer'") as caught:
        load_network(ours)
    assert "Hugging Face" not in str(caught.value)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "config.json").write_text(json.dumps({"model_type": "mamba", "hidden_size": 8, "vocab_size": 256}))
    (theirs / "model.safetensors").write_bytes(b"")
    with pytest.raises(BadInput, match="use hf:PATH"):
        load_network(theirs)
    sharded = tmp_path / "sharded"  # a Hugging Face folder with its weights in shards: still pointed to hf:PATH
    sharded.mkdir()
    (sharded / "config.json").write_text((theirs / "config.json").read_text())
    (sharded / "model-00001-of-00002.safetensors").write_bytes(b"")
    with pytest.raises(BadInput, match="no weights; expected model.safetensors or pytorch_model.bin; .*use hf:PATH"):
        registry.load_model(str(sharded))


def config_reads(monkeypatch, directory: Path) -> list:
    """Every read of directory/config.json through pathlib, whoever reads it (the loader, the tokenizer)."""
    reads, config = [], directory / "config.json"

    def counting(read):
        def counted(self, *args, **kwargs):
            if self == config:
                reads.append(self)
            return read(self, *args, **kwargs)
        return counted

    for name in ("read_text", "read_bytes"):
        monkeypatch.setattr(Path, name, counting(getattr(Path, name)))
    return reads


@pytest.mark.parametrize("architecture", ["mamba", "transformer"])
def test_loading_a_directory_reads_config_json_once_and_looks_up_the_weights_once(architecture, tiny_mamba, tmp_path,
                                                                                   monkeypatch):
    """The directory is resolved once (its files, for the fingerprint) and loaded from that, not looked up again."""
    if architecture == "transformer":
        cfg = GPTConfig(vocab_size=256, block_size=32, n_layer=1, n_head=2, d_model=16)
        directory = checkpoint.save_pretrained(GPT(cfg), tmp_path / "gpt", cfg.to_dict())
    else:
        directory = tiny_mamba
    reads, lookups = config_reads(monkeypatch, directory), []
    weight_file = checkpoint.weight_file
    monkeypatch.setattr(checkpoint, "weight_file", lambda d: lookups.append(d) or weight_file(d))
    model = registry.load_model(str(directory))
    assert len(reads) == 1 and len(lookups) == 1
    assert model.resolved.input_files[:2] == (directory / "config.json", weight_file(directory))
    assert model.architecture == architecture


def test_a_run_reads_each_models_config_json_once(runner, tiny_mamba, tiny_corpus, tmp_path, monkeypatch):
    """Two cells of one model: resolved once for the fingerprint, loaded from that resolution."""
    reads = config_reads(monkeypatch, tiny_mamba)
    done = runner.invoke(cli, ["run", "--quiet", "--model", str(tiny_mamba), "--corpus", str(tiny_corpus),
                               "--noise", "drop:p=0.1", "--out", str(tmp_path / "run")])
    assert done.exit_code == 0, done.output
    assert len(json.loads((tmp_path / "run" / "results.json").read_text())) == 2
    assert len(reads) == 1
