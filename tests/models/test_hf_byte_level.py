"""A byte-level Hugging Face model (transformers' own BltForCausalLM, random and tiny, made offline) scores through
hf:PATH as a byte model: one token per byte, bits per byte over its UTF-8 bytes, and the NLL transformers' own loss
gives on the same ids."""

from __future__ import annotations

import json
import math

import pytest

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "BltForCausalLM"):
    pytest.skip("this transformers has no BLT (BltForCausalLM)", allow_module_level=True)

import torch  # noqa: E402

from robustbench_bytes.cli import cli  # noqa: E402
from support.hf_models import make_tiny_blt  # noqa: E402

TEXT = "an owl, Æthel — naïve café\nAnd God said"


@pytest.fixture(scope="module")
def blt(tmp_path_factory):
    base = tmp_path_factory.mktemp("blt")
    (base / "text.txt").write_text(TEXT, encoding="utf-8")
    return make_tiny_blt(base / "model"), base / "text.txt"


def test_blt_scores_as_a_byte_model_on_its_bytes(runner, blt):
    model, text = blt
    result = runner.invoke(cli, ["score", "--model", f"hf:{model}", "--corpus", str(text), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    n = len(TEXT.encode("utf-8"))
    assert n > len(TEXT)  # the text has multi-byte characters: bytes and characters differ
    assert (r["level"], r["architecture"], r["bytes"], r["tokens"]) == ("byte", "blt", n, n)
    assert r["bits_per_byte"] == pytest.approx(r["nll"] / (n * math.log(2)), rel=1e-12)
    assert sum(r["positions"]["bytes"]) == n and math.fsum(r["positions"]["nll"]) == pytest.approx(r["nll"])

    # transformers' own loss over BOS + the byte ids (byte + 4) is the same NLL
    module = transformers.BltForCausalLM.from_pretrained(model).eval()
    ids = torch.tensor([[1] + [b + 4 for b in TEXT.encode("utf-8")]])
    with torch.no_grad():
        loss = module(input_ids=ids, labels=ids, use_cache=False).loss.item()
    assert r["nll"] == pytest.approx(loss * n, rel=1e-5)


def test_a_byte_model_whose_ids_are_not_the_bytes_cannot_verify_drafts(runner, blt):
    model, _ = blt
    result = runner.invoke(cli, ["generate", "--model", f"hf:{model}", "--draft", "mamba-bpe-drafter-kjv-shakespeare",
                                 "--prompt", "an owl", "--max-bytes", "4", "--quiet"])
    assert result.exit_code == 2 and "not the bytes themselves" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_blt_generates_its_greedy_bytes_without_its_cache(runner, blt):
    """BLT's cache needs generate()'s own set-up: our decoder reruns its window instead (same logits)."""
    model, _ = blt
    result = runner.invoke(cli, ["generate", "--model", f"hf:{model}", "--prompt", "an owl", "--max-bytes", "6",
                                 "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)["text"].encode("utf-8", "surrogateescape")
    module = transformers.BltForCausalLM.from_pretrained(model).eval()
    ids, want = [1] + [b + 4 for b in b"an owl"], b""
    with torch.no_grad():
        while len(want) < 6:
            token = int(module(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].argmax())
            if token < 4:  # a special token ends the text
                break
            want += bytes([token - 4])
            ids.append(token)
    assert got.decode("utf-8", "replace") == want.decode("utf-8", "replace")
