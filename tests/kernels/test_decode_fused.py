"""The fused decoding step (kernels/decode_cpu.py) against the reference step (MambaLM.step): logits and greedy
tokens, on random shapes (byte and subword vocabularies, several widths/depths/state sizes/conv widths/dt ranks,
RMSNorm and LayerNorm, tied and untied heads, with and without biases) and on the zoo's byte model; chunks,
save/restore and modules it must not run (subclasses that change step())."""

from __future__ import annotations

import pytest
import torch

from robustbench_bytes.generation import generate
from robustbench_bytes.generation.decoders import MambaDecoder, make_decoder
from robustbench_bytes.kernels import decode_cpu
from robustbench_bytes.models.mamba import MambaConfig, MambaLM

# float32 logits of sums taken in another order, relative to the logits' scale. On these random networks (weights
# perturbed by 0.3: rounding differences grow layer by layer) the reference step and the full forward already
# differ by up to 3e-5 of the scale; the trained zoo model is held to the absolute 1e-5 below.
REL = 3e-5
TIE = 1e-3  # top-2 margin below which two float32 orders may pick different argmaxes

SHAPES = [
    dict(d_model=32, n_layer=2, vocab_size=256, ssm_cfg={"d_state": 8}, rms_norm=False, tie_embeddings=False),
    dict(d_model=40, n_layer=3, vocab_size=256, ssm_cfg={"d_state": 4, "d_conv": 3}, rms_norm=True,
         tie_embeddings=False),
    dict(d_model=24, n_layer=1, vocab_size=301, ssm_cfg={"d_state": 16, "d_conv": 2, "dt_rank": 5}, rms_norm=True),
    dict(d_model=48, n_layer=4, vocab_size=1000, ssm_cfg={"d_state": 3, "d_conv": 5, "expand": 3}, rms_norm=False,
         tie_embeddings=True),
    dict(d_model=16, n_layer=2, vocab_size=256, ssm_cfg={"bias": True, "conv_bias": False, "d_conv": 1},
         rms_norm=False, tie_embeddings=False),
    dict(d_model=64, n_layer=2, vocab_size=50277, ssm_cfg={}, rms_norm=True),  # mamba-130m's vocabulary, tied
]


def random_mamba(config: dict, seed: int) -> MambaLM:
    torch.manual_seed(seed)
    module = MambaLM(MambaConfig(**config))
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))  # off mamba_ssm's special values; spreads the logits
    return module.eval()


def scale(row: torch.Tensor) -> float:
    return max(1.0, float(row.abs().max()))


def margin(row) -> float:
    top = torch.topk(row, 2).values
    return float(top[0] - top[1])


def run_pair(module, vocab: int, prompt: list[int], steps: int, stepped: int = 1):
    """Fused and reference decoders fed the same prompt, then the reference's greedy tokens. Returns the worst
    logit difference (relative to the logits' scale) and whether the greedy choices agreed away from ties."""
    fused, ref = MambaDecoder(module, vocab, "cpu", fused=True), MambaDecoder(module, vocab, "cpu", fused=False)
    assert fused.fused is not None and ref.fused is None
    fused.max_stepped = stepped  # a prompt longer than this goes through the module's forward as a chunk
    worst = 0.0
    with torch.inference_mode():
        a, b = fused.prefill(prompt), ref.prefill(prompt)
        for _ in range(steps):
            worst = max(worst, float((a - b).abs().max()) / scale(b))
            token = int(b.argmax())
            if int(a.argmax()) != token:
                assert margin(b) < TIE, f"greedy choice differs away from a tie (margin {margin(b):.3g})"
            a, b = fused.step(token), ref.step(token)
        worst = max(worst, float((a - b).abs().max()) / scale(b))
    return worst


@pytest.mark.parametrize("index", range(len(SHAPES)))
def test_fused_step_equals_the_reference_step_on_random_shapes(index):
    config = SHAPES[index]
    module = random_mamba(config, seed=index)
    vocab = config["vocab_size"]
    for prompt, stepped in (([3], 1), ([1, 2, 3, 4, 5, 6, 7], 1), ([1, 2, 3, 4, 5, 6, 7], 8)):
        assert run_pair(module, vocab, prompt, steps=30, stepped=stepped) <= REL


def test_fused_step_matches_the_full_forward():
    """An independent oracle: stepping token by token gives the logits of the whole-sequence forward."""
    module = random_mamba(SHAPES[1], seed=11)
    ids = [int(i) for i in torch.randint(0, 256, (40,), generator=torch.Generator().manual_seed(0))]
    with torch.inference_mode():
        full, _ = module(torch.tensor([ids]))
        dec = MambaDecoder(module, 256, "cpu", fused=True)
        rows = [dec.step(t) for t in ids]
    for i, row in enumerate(rows):
        assert float((row - full[0, i]).abs().max()) <= 1e-4 * scale(full[0, i]), i


@pytest.mark.parametrize("stepped", [1, 8])
def test_save_restore_and_chunks_interleaved_with_fused_steps(stepped):
    """stepped: feeds of up to that many tokens go step by step; longer ones through the module's forward (a
    chunk), whose state the fused decoder takes over."""
    module = random_mamba(SHAPES[0], seed=3)
    fused, ref = make_decoder_pair(module)
    fused.max_stepped = stepped
    with torch.inference_mode():
        for dec in (fused, ref):
            dec.prefill([10, 20, 30])
            dec.saved = dec.save()
            dec.step(40)
            dec.feed([50, 60, 70])
            dec.restore(dec.saved)
            dec.restore(dec.saved)  # a saved state stays reusable
            dec.out = [dec.feed([41, 42])[-1], dec.step(43), dec.feed([44, 45, 46])[-1], dec.step(47),
                       *dec.feed(list(range(100, 120))), dec.step(48)]
    assert fused.calls["chunks"] == (5 if stepped == 1 else 1) and fused.calls["steps"] >= 3
    for a, b in zip(fused.out, ref.out):
        assert float((a - b).abs().max()) <= REL * scale(b)


def make_decoder_pair(module):
    vocab = module.config.vocab_size
    return MambaDecoder(module, vocab, "cpu", fused=True), MambaDecoder(module, vocab, "cpu", fused=False)


def test_modules_the_fused_step_cannot_run_keep_their_own_step():
    class Shifted(MambaLM):
        def step(self, ids, state):
            logits, state = super().step(ids, state)
            return logits + 1.0, state

    base = random_mamba(SHAPES[0], seed=5)
    shifted = Shifted(base.config)
    shifted.load_state_dict(base.state_dict())
    assert not decode_cpu.supports(shifted)
    assert MambaDecoder(shifted, 256, "cpu").fused is None
    half = random_mamba(SHAPES[0], seed=5).to(torch.bfloat16)
    assert not decode_cpu.supports(half)
    with pytest.raises(ValueError, match="float32 MambaLM"):
        decode_cpu.FusedMamba(shifted)


def test_fused_decoding_of_the_zoo_byte_model_equals_the_reference():
    from robustbench_bytes.models import ZOO_DIR, load_model

    if not (ZOO_DIR / "mambabyte-kjv-shakespeare" / "model.safetensors").is_file():
        pytest.fail("the zoo's byte model is missing")
    model = load_model("mambabyte-kjv-shakespeare", "cpu")
    prompt = list(model.tokenizer.prefix_ids) + model.tokenizer.encode("And God said, Let there be")
    fused, ref = make_decoder(model), make_decoder(model, fused=False)
    assert fused.fused is not None
    worst, tokens = 0.0, []
    with torch.inference_mode():
        a, b = fused.prefill(prompt), ref.prefill(prompt)
        for _ in range(120):
            worst = max(worst, float((a - b).abs().max()))
            tokens.append(int(b.argmax()))
            assert int(a.argmax()) == tokens[-1] or margin(b) < TIE
            a, b = fused.step(tokens[-1]), ref.step(tokens[-1])
    assert worst <= 1e-5  # the bound, absolute, on the real model
    assert generate(model, "And God said, Let there be", max_bytes=120).data == bytes(tokens)


def test_the_parallel_step_gives_the_serial_step_logits_bit_for_bit():
    """Rows shared among numba's threads: each row's sum is taken in the same order, so nothing changes."""
    import numba

    module = random_mamba(SHAPES[3], seed=8)
    serial, parallel = decode_cpu.FusedMamba(module, parallel=False), decode_cpu.FusedMamba(module, parallel=True)
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        for token in (5, 17, 900, 3, 3, 42):
            assert torch.equal(torch.from_numpy(serial.step(token).copy()), torch.from_numpy(parallel.step(token).copy()))
    finally:
        numba.set_num_threads(before)
    assert decode_cpu.FusedMamba(module).parallel is None  # by default decided at each step (threads, weight size)
