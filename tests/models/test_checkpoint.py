"""Loading mamba_ssm-format directories (MambaByte / state-spaces layouts), saving, and bad inputs."""

import json

import pytest
import torch

from support.mamba_checkpoints import MAMBA130M_LIKE, MAMBABYTE_LIKE, random_state_dict, write_mamba_ssm_checkpoint  # noqa: E402

from robustbench_bytes.errors import BadInput  # noqa: E402
from robustbench_bytes.models.architectures import load_network  # noqa: E402
from robustbench_bytes.models.checkpoint import load_state_dict, save_pretrained  # noqa: E402
from robustbench_bytes.models.mamba import MambaConfig, MambaLM  # noqa: E402


def weights_sha256(directory):
    from robustbench_bytes.files import sha256_file
    from robustbench_bytes.models.checkpoint import weight_file

    return sha256_file(weight_file(directory))


class NotATensor:
    pass


@pytest.fixture(scope="module")
def byte_state():
    return random_state_dict(MAMBABYTE_LIKE, seed=3)


def same_weights(model, state):
    loaded = model.state_dict()
    return all(torch.equal(loaded[k], v) for k, v in state.items())


@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_loads_mambabyte_layout(tmp_path, byte_state, fmt):
    directory = write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, byte_state, fmt)
    model, config = load_network(directory)
    assert config == MAMBABYTE_LIKE
    assert not model.training and model.lm_head.weight is not model.backbone.embedding.weight
    assert same_weights(model, byte_state)


@pytest.mark.parametrize("with_head", [True, False])
def test_tied_head_with_or_without_lm_head_key(tmp_path, with_head):
    state = random_state_dict(MAMBA130M_LIKE, seed=4)
    if not with_head:
        state.pop("lm_head.weight")
    model, _ = load_network(write_mamba_ssm_checkpoint(tmp_path, MAMBA130M_LIKE, state))
    assert model.lm_head.weight is model.backbone.embedding.weight
    assert model.backbone.embedding.weight.shape == (50280, 32)  # vocab padded to a multiple of 8
    assert same_weights(model, {k: v for k, v in state.items() if k != "lm_head.weight"})


def test_half_precision_weights_are_loaded_as_float32(tmp_path, byte_state):
    half = {k: v.half() for k, v in byte_state.items()}
    model, _ = load_network(write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, half))
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("tied", [True, False])
def test_save_pretrained_round_trip(tmp_path, tied):
    config = {**MAMBABYTE_LIKE, "tie_embeddings": tied, "robustbench": {"newline": "crlf"}}
    torch.manual_seed(5)
    model = MambaLM(MambaConfig.from_dict(config))
    save_pretrained(model, tmp_path / "ckpt", config, tokenizer_json='{"x": 1}')
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["config.json", "model.safetensors", "tokenizer.json"]
    stored = load_state_dict(tmp_path / "ckpt")
    assert ("lm_head.weight" in stored) == (not tied)
    loaded, loaded_config = load_network(tmp_path / "ckpt")
    assert loaded_config == config
    assert same_weights(loaded, model.state_dict())
    assert (loaded.lm_head.weight is loaded.backbone.embedding.weight) == tied


def test_checkpoint_sha256_follows_the_weights(tmp_path, byte_state):
    a = write_mamba_ssm_checkpoint(tmp_path / "a", MAMBABYTE_LIKE, byte_state)
    b = write_mamba_ssm_checkpoint(tmp_path / "b", MAMBABYTE_LIKE, byte_state)
    changed = dict(byte_state, **{"backbone.norm_f.bias": byte_state["backbone.norm_f.bias"] + 1})
    c = write_mamba_ssm_checkpoint(tmp_path / "c", MAMBABYTE_LIKE, changed)
    assert weights_sha256(a) == weights_sha256(b) != weights_sha256(c)
    assert len(weights_sha256(a)) == 64


def bad(directory, *patterns):
    with pytest.raises(BadInput) as info:
        load_network(directory)
    message = info.value.__str__()
    assert "\n" not in message
    for pattern in patterns:
        assert pattern in message, message
    return message


def test_missing_directory(tmp_path):
    bad(tmp_path / "nowhere", "nowhere", "no such checkpoint directory")


def test_missing_config_and_missing_weights(tmp_path, byte_state):
    directory = write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, byte_state)
    (directory / "pytorch_model.bin").unlink()
    bad(directory, "no weights", "pytorch_model.bin")
    (directory / "config.json").unlink()
    bad(directory, "config.json", "missing")


@pytest.mark.parametrize("field", ["d_model", "n_layer", "vocab_size"])
def test_config_without_a_required_field(tmp_path, byte_state, field):
    config = {k: v for k, v in MAMBABYTE_LIKE.items() if k != field}
    directory = write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, byte_state)
    (directory / "config.json").write_text(json.dumps(config))
    bad(directory, "config.json", f"missing required field '{field}'")


def test_config_not_json(tmp_path, byte_state):
    directory = write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, byte_state)
    (directory / "config.json").write_text('{"d_model": 32,')
    bad(directory, "config.json", "not valid JSON")


@pytest.mark.parametrize("fmt,name", [("bin", "pytorch_model.bin"), ("safetensors", "model.safetensors")])
def test_truncated_weights(tmp_path, byte_state, fmt, name):
    directory = write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, byte_state, fmt)
    path = directory / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    bad(directory, name, "unreadable or truncated")


def test_pickle_with_objects_is_refused(tmp_path, byte_state):
    directory = write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, byte_state)
    torch.save({**byte_state, "extra": NotATensor()}, directory / "pytorch_model.bin")
    bad(directory, "pytorch_model.bin", "refused: not a plain tensor state dict")


def test_nested_dict_is_refused(tmp_path, byte_state):
    directory = write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, byte_state)
    torch.save({"model": dict(byte_state)}, directory / "pytorch_model.bin")
    bad(directory, "refused: not a plain tensor state dict")


def test_missing_key(tmp_path, byte_state):
    state = {k: v for k, v in byte_state.items() if k != "backbone.layers.1.mixer.A_log"}
    bad(write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, state),
        "missing key 'backbone.layers.1.mixer.A_log'", "(64, 16)")


def test_untied_checkpoint_without_head(tmp_path, byte_state):
    state = {k: v for k, v in byte_state.items() if k != "lm_head.weight"}
    bad(write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, state), "missing key 'lm_head.weight'")


def test_unexpected_key(tmp_path, byte_state):
    state = dict(byte_state, **{"backbone.layers.2.norm.weight": torch.ones(32)})
    bad(write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, state), "unexpected key 'backbone.layers.2.norm.weight'")


def test_wrong_shape(tmp_path, byte_state):
    state = dict(byte_state, **{"backbone.layers.0.mixer.conv1d.weight": torch.zeros(64, 1, 3)})
    bad(write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, state),
        "'backbone.layers.0.mixer.conv1d.weight'", "expected (64, 1, 4)", "found (64, 1, 3)")


def test_unsupported_config_value(tmp_path, byte_state):
    config = {**MAMBABYTE_LIKE, "ssm_cfg": {"layer": "Mamba2"}}
    bad(write_mamba_ssm_checkpoint(tmp_path, config, byte_state), "config.json", "Mamba2")


def test_hugging_face_config_gets_a_hint(tmp_path, byte_state):
    directory = write_mamba_ssm_checkpoint(tmp_path, MAMBABYTE_LIKE, byte_state)
    (directory / "config.json").write_text(json.dumps({"model_type": "mamba", "hidden_size": 32}))
    bad(directory, "missing required field 'd_model'", "hf:PATH")
