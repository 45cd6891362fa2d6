"""Loading without a second copy: weights map the checkpoint file, the GPT is not randomly initialised before
its weights are assigned, and the NLL taken in slices equals the NLL of the whole logits."""

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from robustbench_bytes import scoring
from robustbench_bytes.models import checkpoint, load_directory
from robustbench_bytes.models.architectures import load_network
from robustbench_bytes.models.transformer import GPT, GPTConfig
from support.run_fakes import make_mamba_checkpoint

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")


def mapped_ranges(path: Path) -> list[tuple[int, int]]:
    """Address ranges of this process's mappings of `path`."""
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and Path(fields[5]) == path.resolve():
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            ranges.append((lo, hi))
    return ranges


def lies_in(tensor: torch.Tensor, ranges) -> bool:
    start = tensor.data_ptr()
    return any(lo <= start and start + tensor.nbytes <= hi for lo, hi in ranges)


@linux_only
def test_safetensors_weights_map_the_file(tmp_path):
    directory = make_mamba_checkpoint(tmp_path / "m")
    state = checkpoint.load_state_dict(directory)
    ranges = mapped_ranges(directory / "model.safetensors")
    assert ranges and all(lies_in(t, ranges) for t in state.values())


@linux_only
def test_pytorch_bin_weights_map_the_file(tmp_path):
    directory = make_mamba_checkpoint(tmp_path / "m")
    state = checkpoint.load_state_dict(directory)
    torch.save({k: v.clone() for k, v in state.items()}, directory / "pytorch_model.bin")
    (directory / "model.safetensors").unlink()
    loaded = checkpoint.load_state_dict(directory)
    ranges = mapped_ranges(directory / "pytorch_model.bin")
    assert ranges and all(lies_in(t, ranges) for t in loaded.values())
    assert all(torch.equal(loaded[k], state[k]) for k in state)


@linux_only
def test_loaded_mamba_parameters_are_the_mapped_weights(tmp_path):
    directory = make_mamba_checkpoint(tmp_path / "m")
    model, _ = load_network(directory)
    ranges = mapped_ranges(directory / "model.safetensors")
    assert all(lies_in(p, ranges) for p in model.parameters())


def test_gpt_is_not_randomly_initialised_before_loading(tmp_path, monkeypatch):
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=256, block_size=16, n_layer=1, n_head=1, d_model=8)
    gpt = GPT(config)
    checkpoint.save_pretrained(gpt, tmp_path / "gpt", dict(config.to_dict(), architecture="transformer"))
    initialised = []
    real_normal = torch.nn.init.normal_

    def recording_normal(tensor, *args, **kwargs):
        initialised.append(tensor.device.type)
        return real_normal(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "normal_", recording_normal)
    loaded = load_directory(tmp_path / "gpt")
    assert initialised == []  # built on the meta device, it draws nothing the checkpoint would overwrite
    assert all(p.device.type == "cpu" for p in loaded.module.parameters())
    assert loaded.module.lm_head.weight is loaded.module.embedding.weight
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(loaded.window(ids, torch.ones_like(ids)), gpt.eval()(ids), rtol=0, atol=0)


def test_nll_in_slices_equals_the_whole(monkeypatch):
    torch.manual_seed(0)
    logits = torch.randn(2, 7, 300)
    targets = torch.randint(0, 300, (2, 7))
    targets[0, :3] = -100
    whole = F.cross_entropy(logits.reshape(14, 300), targets.reshape(14), ignore_index=-100,
                            reduction="none").view(2, 7)
    monkeypatch.setattr(scoring.loop, "NLL_SLICE", 300 * 3)  # three positions a slice: five slices, the last short
    assert torch.equal(scoring.loop.token_nll(logits, targets), whole)
    assert torch.equal(whole[0, :3], torch.zeros(3))
