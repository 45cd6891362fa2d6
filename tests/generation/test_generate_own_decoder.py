"""Each model chooses its decoder (LoadedModel.make_decoder): the loader's `decoder`, else the network's own
make_decoder, else one built on what the model is scored with (its stream or its window), whose logits are the
full forward's."""

from __future__ import annotations

import pytest
import torch

from robustbench_bytes.errors import BadInput
from robustbench_bytes.generation import generate
from robustbench_bytes.generation.decoders import MambaDecoder, StreamDecoder, WindowedDecoder, make_decoder
from robustbench_bytes.models.base import LoadedModel
from robustbench_bytes.models.mamba import MambaConfig, MambaLM
from robustbench_bytes.models.transformer import GPT, GPTConfig, KVCache
from robustbench_bytes.models.tokenization import ByteTokenizer

IDS = list(b"In the beginning was the word, and the word")


def loaded(module, **ways) -> LoadedModel:
    return LoadedModel(name="tiny", level="byte", architecture="test", module=module, tokenizer=ByteTokenizer(),
                       device=torch.device("cpu"), checkpoint_sha256="", source="test", parameters=0, **ways)


def tiny_mamba() -> MambaLM:
    torch.manual_seed(0)
    return MambaLM(MambaConfig(d_model=16, n_layer=2, vocab_size=256, ssm_cfg={"d_state": 4})).eval()


def tiny_gpt(block_size=64) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=256, block_size=block_size, n_layer=2, n_head=2, d_model=16)).eval()


def test_each_network_brings_its_own_decoder():
    mamba, gpt = tiny_mamba(), tiny_gpt()
    assert isinstance(make_decoder(loaded(mamba)), MambaDecoder)
    assert make_decoder(loaded(mamba), fused=False).fused is None
    gpt_decoder = make_decoder(loaded(gpt))
    assert isinstance(gpt_decoder, WindowedDecoder) and isinstance(gpt_decoder.cache, KVCache)


def test_the_loaders_decoder_comes_first():
    made = []
    model = loaded(tiny_mamba(), decoder=lambda m, **options: made.append((m, options)) or "mine")
    assert model.make_decoder(fused=False) == "mine"
    assert made == [(model, {"fused": False})]


@pytest.mark.parametrize("kind", ["stream", "window"])
@torch.inference_mode()
def test_a_model_with_only_its_scoring_way_decodes_as_its_full_forward(kind):
    if kind == "stream":
        network = tiny_mamba()
        model = loaded(torch.nn.Identity(), stream=network)  # the Identity has no make_decoder of its own
        full = network(torch.tensor([IDS]))[0][0]
    else:
        network = tiny_gpt()
        model = loaded(torch.nn.Identity(), window=lambda ids, mask: network(ids), max_length=64)
        full = network(torch.tensor([IDS]))[0]
    decoder = model.make_decoder()
    assert isinstance(decoder, StreamDecoder if kind == "stream" else WindowedDecoder)
    rows = [decoder.prefill(IDS[:10])]
    saved = decoder.save()
    rows += [decoder.step(t) for t in IDS[10:20]]
    decoder.restore(saved)  # back: the same steps give the same rows
    again = [decoder.step(t) for t in IDS[10:20]]
    rows.append(decoder.feed(IDS[20:])[-1])
    expected = full[[9, *range(10, 20), len(IDS) - 1]]
    torch.testing.assert_close(torch.stack(rows), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(torch.stack(again), torch.stack(rows[1:11]), rtol=0, atol=0)


def test_a_window_decoder_and_the_gpt_cache_generate_the_same_bytes():
    network = tiny_gpt()
    own = generate(loaded(network), "In the", max_bytes=30).data
    rebuilt = generate(loaded(torch.nn.Identity(), window=lambda ids, mask: network(ids), max_length=64),
                       "In the", max_bytes=30).data
    assert len(own) == 30 and own == rebuilt


def test_a_model_with_no_way_to_decode_is_one_line():
    with pytest.raises(BadInput, match="no decoder for generation"):
        loaded(torch.nn.Identity()).make_decoder()
    with pytest.raises(BadInput, match="takes no options"):
        loaded(torch.nn.Identity(), stream=tiny_mamba()).make_decoder(fused=False)
