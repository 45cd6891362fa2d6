"""The lm-evaluation-harness bridge (extra [lm-eval]): our models and kernel as an lm-eval model named
"robustbench", optionally noising every request's text with our seeded streams.

    import robustbench_bytes.integrations.lm_eval   # registers the model "robustbench" with lm_eval
    lm_eval.simple_evaluate(model="robustbench", model_args="model=mambabyte-kjv-shakespeare,dtype=auto", tasks=[...])

model_args: model (a MODEL as `robustbench run --model` takes it), device (auto), dtype (precision.DTYPES),
batch_size, noise (one noise spec; default clean), seed, noise_target (context | completion | both; default
context; noise_choices=true is both), add_bos_token.

add_bos_token (default true): loglikelihood conditions every context on the model's prefix (BOS, else EOS, or
the prefix byte), as `robustbench run --task` does; false conditions on it only when the context is empty,
which is what lm-evaluation-harness's `hf` model does with its default add_bos_token for a tokenizer that adds
no BOS by itself (GPT-2's). A NaN or infinite log-likelihood is an error, never handed to lm-eval.
loglikelihood goes through task_scoring.continuation_loglikelihoods (the very function `robustbench run --task`
scores with), loglikelihood_rolling through scoring.score_corpus, generate_until through generate.generate.

Noise: a request of document d (Instance.doc_id) has its context noised as document d of the seeded streams
(seed, spec, d), so every choice of a question sees the same noised question; under the completion or both
targets the continuation of choice j (Instance.idx) uses stream task_scoring.CHOICE_STREAMS + d * MAX_CHOICES +
j, as `robustbench run --task` does. (lm-eval computes acc_norm from its own, clean, choice strings.)
lm-evaluation-harness 0.4.13 has no entry-point group for models: import this module (or use
`robustbench lm-eval`, or `python -m robustbench_bytes.integrations.lm_eval ARGS...` for lm-eval's own CLI) first.
"""

from __future__ import annotations

import sys

from robustbench_bytes.errors import BadInput
from robustbench_bytes.results.schema import CLEAN
from robustbench_bytes.results.task_schema import NOISE_TARGETS

try:
    from lm_eval.api.model import LM
    from lm_eval.api.registry import register_model
except ImportError as e:  # pragma: no cover - depends on the optional extra
    raise BadInput("the lm-evaluation-harness bridge needs lm-eval: pip install 'robustbench-bytes[lm-eval]'") from e

MODEL_NAME = "robustbench"


def _flag(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise BadInput(f"{name}={value!r}: expected true or false")


def _batch_size(value, default: int = 32) -> int:
    if value in (None, "", "auto") or (isinstance(value, str) and value.startswith("auto")):
        return default
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise BadInput(f"batch_size={value!r}: expected a positive integer or auto") from None
    if size < 1:
        raise BadInput(f"batch_size={value!r}: expected a positive integer or auto")
    return size


@register_model(MODEL_NAME)
class RobustbenchLM(LM):
    """An lm-eval LM over a robustbench model (LoadedModel), with an optional noise on every request."""

    def __init__(self, model: str | None = None, device: str | None = "auto", dtype: str = "auto",
                 batch_size=32, noise: str | None = None, seed=0, noise_target="context", noise_choices=False,
                 add_bos_token=True, loaded=None, **unused):
        super().__init__()
        from robustbench_bytes import noise as noise_lib
        from robustbench_bytes.models import load_model, resolve_device
        from robustbench_bytes.scoring.precision import DTYPES

        if loaded is None and not model:
            raise BadInput("model_args: give model=NAME (a zoo name, a checkpoint directory or hf:PATH)")
        if dtype not in DTYPES:
            raise BadInput(f"dtype={dtype!r}: expected one of {', '.join(DTYPES)}")
        if loaded is None:
            import torch

            if str(device or "").startswith("cuda") and not torch.cuda.is_available():
                # lm-eval's command line passes device=cuda:0 unless told otherwise
                print(f"robustbench: device {device} is not available; scoring on the CPU", file=sys.stderr)
                device = "cpu"
            loaded = load_model(model, resolve_device(device or "auto"))
        self.model = loaded
        self.dtype, self.batch_size = dtype, _batch_size(batch_size)
        try:
            self.seed = int(seed)
        except (TypeError, ValueError):
            raise BadInput(f"seed={seed!r}: expected an integer >= 0") from None
        spec = noise_lib.canonical(str(noise or CLEAN))
        if noise_target not in NOISE_TARGETS:
            raise BadInput(f"noise_target={noise_target!r}: expected one of {', '.join(NOISE_TARGETS)}")
        self.noise = spec
        self.noise_target = "both" if _flag(noise_choices, "noise_choices") else noise_target
        self.prefix = "always" if _flag(add_bos_token, "add_bos_token") else "empty_context"

    @property
    def device(self):
        return self.model.device

    @property
    def tokenizer_name(self) -> str:
        return self.model.name

    def _noised(self, text: str, index) -> str:
        if self.noise == CLEAN:
            return text
        from robustbench_bytes import noise as noise_lib

        return noise_lib.apply(text, self.noise, seed=self.seed, doc_index=int(index or 0))

    def _continuation_index(self, request) -> int:
        from robustbench_bytes.scoring.tasks import CHOICE_STREAMS, MAX_CHOICES

        return CHOICE_STREAMS + int(request.doc_id or 0) * MAX_CHOICES + int(request.idx or 0)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        from robustbench_bytes.scoring.tasks import continuation_loglikelihoods

        pairs = []
        for request in requests:
            context, continuation = request.args[0], request.args[1]
            if self.noise_target in ("context", "both"):
                context = self._noised(context, request.doc_id)
            if self.noise_target in ("completion", "both"):
                continuation = self._noised(continuation, self._continuation_index(request))
            pairs.append((context, continuation))
        scores = continuation_loglikelihoods(self.model, pairs, batch_size=self.batch_size, dtype=self.dtype,
                                             prefix=self.prefix)
        return [(s.loglikelihood, s.greedy) for s in scores]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        from robustbench_bytes.data.corpus import Corpus
        from robustbench_bytes.scoring import score_corpus

        texts = [self._noised(r.args[0], r.doc_id) for r in requests]
        if not any(texts):
            return [0.0] * len(texts)
        scored = score_corpus(self.model, Corpus(name="lm-eval", documents=texts), batch_size=self.batch_size,
                              progress=False)  # raises scoring.NonFiniteScore on a NaN or infinite NLL
        return [-d.nll for d in scored.documents]

    def generate_until(self, requests, disable_tqdm: bool = False):
        from robustbench_bytes.generation import generate

        out = []
        for request in requests:
            context, options = request.args[0], dict(request.args[1] or {})
            until = options.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            max_bytes = int(options.get("max_gen_toks") or 256)
            text = generate(self.model, self._noised(context, request.doc_id), max_bytes=max_bytes,
                            temperature=float(options.get("temperature") or 0.0)).text
            cuts = [text.find(stop) for stop in until if stop and stop in text]
            out.append(text[:min(cuts)] if cuts else text)
        return out


def main(argv: list[str] | None = None) -> None:
    """lm-evaluation-harness's own command line, with the model "robustbench" registered."""
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval"] + list(sys.argv[1:] if argv is None else argv)
    cli_evaluate()


if __name__ == "__main__":
    main()
