"""The bridge against lm-evaluation-harness's own `hf` model on the same tiny GPT-2: per-choice log-likelihoods
equal under matching prefix settings; a NaN model is refused instead of handed to lm-eval's argmax."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

from robustbench_bytes.models import load_model  # noqa: E402
from robustbench_bytes.scoring import NonFiniteScore  # noqa: E402
from robustbench_bytes.scoring.tasks import NonFiniteLogLikelihood  # noqa: E402
from support.hf_models import make_tiny_gpt2  # noqa: E402
from support.run_fakes import make_mamba_checkpoint  # noqa: E402

PAIRS = [("Now the serpent was more", " subtil"), ("Now the serpent was more", " lazy than"),
         ("And he said unto the woman,", " Yea"), ("the garden? ", "And"), ("", "Now the"),
         ("Ye shall not eat of every", " tree of the garden")]


def requests(pairs):
    from lm_eval.api.instance import Instance

    return [Instance("loglikelihood", {}, pair, idx=0, metadata=("t", n, 1)) for n, pair in enumerate(pairs)]


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return make_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))


@pytest.mark.parametrize("add_bos_token", [None, True], ids=["lm-eval default", "add_bos_token=True"])
def test_per_choice_loglikelihoods_equal_lm_evals_hf_model(gpt2, add_bos_token):
    from lm_eval.models.huggingface import HFLM

    from robustbench_bytes.integrations.lm_eval import RobustbenchLM

    args = {} if add_bos_token is None else {"add_bos_token": add_bos_token}
    theirs = HFLM(pretrained=str(gpt2), device="cpu", batch_size=1, **args).loglikelihood(requests(PAIRS))
    ours = RobustbenchLM(model=f"hf:{gpt2}", device="cpu", add_bos_token=bool(add_bos_token),
                         batch_size=2).loglikelihood(requests(PAIRS))
    for (context, continuation), (ll_theirs, _), (ll_ours, _) in zip(PAIRS, theirs, ours):
        assert ll_ours == pytest.approx(ll_theirs, abs=1e-5), (context, continuation)
    # the two settings differ where the context is not empty: the check above is not vacuous
    other = RobustbenchLM(model=f"hf:{gpt2}", device="cpu", add_bos_token=not add_bos_token).loglikelihood(
        requests(PAIRS[:1]))
    assert abs(other[0][0] - ours[0][0]) > 1e-4


def test_a_nan_model_is_refused_not_scored(tmp_path):
    from robustbench_bytes.integrations.lm_eval import RobustbenchLM

    model = load_model(str(make_mamba_checkpoint(tmp_path / "nan", head_scale=math.nan)))
    bridge = RobustbenchLM(loaded=model)
    with pytest.raises(NonFiniteLogLikelihood, match="non-finite"):
        bridge.loglikelihood(requests(PAIRS[:2]))
    with pytest.raises(NonFiniteScore, match="non-finite"):
        bridge.loglikelihood_rolling(requests([("an owl sat on the barn",)]))


def test_a_bad_add_bos_token_is_one_line():
    from robustbench_bytes.errors import BadInput
    from robustbench_bytes.integrations.lm_eval import RobustbenchLM

    with pytest.raises(BadInput, match="add_bos_token='maybe'"):
        RobustbenchLM(model="mambabyte-kjv-shakespeare", add_bos_token="maybe")
