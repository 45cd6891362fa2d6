"""The GPT baseline: causality, tied head, config round trip, strict weight loading, trainability."""

import pytest
import torch

from robustbench_bytes.models.transformer import GPT, GPTConfig

SMALL = dict(vocab_size=50, block_size=16, n_layer=2, n_head=2, d_model=16)


def test_config_round_trip_and_required_fields():
    config = GPTConfig(**SMALL)
    d = config.to_dict()
    assert d["architecture"] == "transformer"
    assert GPTConfig.from_dict(d) == config
    for name in GPTConfig.REQUIRED:
        broken = {k: v for k, v in d.items() if k != name}
        with pytest.raises(KeyError, match=name):
            GPTConfig.from_dict(broken)


def test_causal_logits_do_not_depend_on_the_future():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**SMALL)).eval()
    ids = torch.randint(0, 50, (2, 12))
    changed = ids.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % 50
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert a.shape == (2, 12, 50) and a.dtype == torch.float32
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_too_long_input_is_refused():
    model = GPT(GPTConfig(**SMALL))
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_tied_head_shares_the_embedding_and_loads_without_its_key():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**SMALL))
    assert model.lm_head.weight is model.embedding.weight
    sd = {k: v.clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    other = GPT(GPTConfig(**SMALL))
    other.load_weights(sd)
    assert other.lm_head.weight is other.embedding.weight
    torch.testing.assert_close(other.lm_head.weight, model.embedding.weight)
    untied = GPT(GPTConfig(**SMALL, tie_embeddings=False))
    assert untied.num_parameters() == model.num_parameters() + 50 * 16


def test_strict_loading_names_key_and_shapes():
    model = GPT(GPTConfig(**SMALL))
    sd = dict(model.state_dict())
    sd["blocks.0.attn.qkv.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"blocks\.0\.attn\.qkv\.weight.*\(3, 3\).*\(48, 16\)"):
        model.load_weights(sd)
    sd = dict(model.state_dict())
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unexpected key 'extra.weight'"):
        model.load_weights(sd)
    sd = dict(model.state_dict())
    del sd["norm_f.weight"]
    with pytest.raises(ValueError, match="missing key 'norm_f.weight'"):
        model.load_weights(sd)


def test_a_few_adamw_steps_lower_the_loss():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**SMALL))
    data = torch.arange(17).remainder(5).repeat(4, 1)  # a learnable periodic sequence
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        logits = model(data[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 50), data[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
