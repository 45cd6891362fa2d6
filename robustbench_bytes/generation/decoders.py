"""Incremental decoding over any loaded model: one interface over a Mamba state, a GPT key/value cache and a
Hugging Face past_key_values. Which decoder a model uses is the model's own choice (LoadedModel.make_decoder:
its loader's `decoder`, else its network's `make_decoder`, else `scoring_decoder` over what it is scored with);
this module holds the decoders, not the dispatch.

A decoder holds the context it has been fed. prefill(ids) feeds a long context (in chunks) and returns the
logits after its last token; feed(ids) feeds a few tokens as one chunk and returns the logits after each;
step(id) feeds one token; save() / restore() take the context back to an earlier point (a drafted chunk that
was rejected leaves nothing behind). Logits are float32 rows over the tokenizer's vocabulary (padding cut off).
`calls` counts the network calls (single steps, chunks and the tokens in them): where decoding time goes.
"""

from __future__ import annotations

import copy

import torch

from robustbench_bytes.errors import BadInput

PREFILL_CHUNK = 1024  # tokens per chunk when feeding a prompt: bounds the memory of the logits
# A chunk through the module's forward costs about one pass over the weights plus a fixed cost per layer (its torch
# calls and the scan's launch); a fused step costs about one pass over the weights. At the zoo's shape (8 MB of
# weights, 4 layers) a chunk of 4 bytes cost 11.5 steps and one of 12 bytes 16.3 (bench/results/generate.md): about
# 9 steps fixed, so stepping wins up to ~20 tokens. Counted as bytes of weights streamed, the fixed cost is ~40 MB
# per layer: up to 1 + n_layer * STEP_INSTEAD_BYTES / weight_bytes tokens are stepped (zoo models: ~20;
# mamba-130m: 2).
STEP_INSTEAD_BYTES = 40_000_000


def prefill_in_chunks(feed, ids) -> torch.Tensor:
    """The logits after the last of `ids`, fed PREFILL_CHUNK tokens at a time (a decoder's prefill)."""
    ids = list(ids)
    for start in range(0, len(ids), PREFILL_CHUNK):
        last = feed(ids[start:start + PREFILL_CHUNK])[-1]
    return last


class MambaDecoder:
    """A MambaLM: the recurrent state is the whole context; constant memory and time per token. Single steps go
    through MambaLM.step (the reference) or, with `fused` where the module allows it (a float32 MambaLM on the
    CPU), through one compiled call over all layers (kernels/decode_cpu.py) with the same results; chunks always
    go through the module's forward (the parallel scan)."""

    def __init__(self, module, vocab_size: int, device, fused: bool = True):
        from robustbench_bytes.kernels import decode_cpu

        self.module, self.vocab, self.device = module, vocab_size, device
        self.fused = decode_cpu.FusedMamba(module) if fused and decode_cpu.supports(module) else None
        self.state = self.fused.state() if self.fused is not None else module.init_state(1, device)
        self.calls = new_calls()
        self.max_stepped = 1  # a feed of at most this many tokens goes step by step
        if self.fused is not None:
            weight_bytes = 4 * sum(p.numel() for p in module.parameters())
            self.max_stepped = 1 + module.config.n_layer * STEP_INSTEAD_BYTES // weight_bytes

    def _ids(self, ids):
        return torch.as_tensor(list(ids), dtype=torch.long, device=self.device)[None]

    def feed(self, ids) -> torch.Tensor:
        ids = list(ids)
        if 0 < len(ids) <= self.max_stepped:  # single steps cost less than a chunk of a few tokens
            return torch.stack([self.step(i) for i in ids])
        count(self.calls, len(ids))
        logits, state = self.module(self._ids(ids), self.state)
        if self.fused is not None:
            self.fused.load_state(state)  # self.state shares the fused decoder's memory: now updated too
        else:
            self.state = state
        return logits[0, :, : self.vocab]

    def prefill(self, ids) -> torch.Tensor:
        return prefill_in_chunks(self.feed, ids)

    def step(self, token: int) -> torch.Tensor:
        count(self.calls, 1, step=True)
        if self.fused is not None:
            return torch.from_numpy(self.fused.step(token)[: self.vocab].copy())  # the array is reused next step
        logits, self.state = self.module.step(torch.tensor([token], device=self.device), self.state)
        return logits[0, : self.vocab]

    def save(self):
        return self.fused.save() if self.fused is not None else self.state.clone()

    def restore(self, saved) -> None:
        if self.fused is not None:
            self.fused.restore(saved)
        else:
            self.state = saved.clone()  # step() updates the state in place: keep `saved` reusable


def new_calls() -> dict:
    return {"steps": 0, "chunks": 0, "chunk_tokens": 0}


def count(calls: dict, tokens: int, step: bool = False) -> None:
    if step:
        calls["steps"] += 1
    else:
        calls["chunks"] += 1
        calls["chunk_tokens"] += tokens


class WindowedDecoder:
    """A model that sees at most `window` tokens (a GPT, a Hugging Face model): a key/value cache; when it is
    full, the cache restarts from the last window/2 tokens (the context then holds window/2..window tokens)."""

    def __init__(self, run, new_cache, crop, window: int, vocab_size: int, device):
        self.run, self.new_cache, self.crop = run, new_cache, crop
        self.window, self.vocab, self.device = window, vocab_size, device
        self.history: list[int] = []  # every token fed, oldest first
        self.cache, self.cached_from, self.cached = new_cache(), 0, 0  # cache holds history[from:from+cached]
        self.epoch = 0  # bumped when the cache restarts: an older save() must then rebuild
        self.calls = new_calls()

    def _run(self, ids: list[int]) -> torch.Tensor:
        t = torch.as_tensor(ids, dtype=torch.long, device=self.device)[None]
        count(self.calls, len(ids), step=len(ids) == 1)
        logits, self.cache = self.run(t, self.cache)
        self.cached += len(ids)
        return logits[0, :, : self.vocab]

    def _restart(self, keep: int) -> torch.Tensor | None:
        self.cache, self.epoch = self.new_cache(), self.epoch + 1
        self.cached_from, self.cached = len(self.history) - keep, 0
        return self._run(self.history[self.cached_from:]) if keep else None

    def feed(self, ids) -> torch.Tensor:
        ids, rows = list(ids), []
        piece = max(1, self.window - self.window // 2)
        for start in range(0, len(ids), piece):
            part = ids[start:start + piece]
            if self.cached + len(part) > self.window:
                self._restart(min(self.window // 2, len(self.history)))
            rows.append(self._run(part))
            self.history += part
        return torch.cat(rows) if rows else torch.zeros(0, self.vocab)

    def prefill(self, ids) -> torch.Tensor:
        return self.feed(ids)[-1]

    def step(self, token: int) -> torch.Tensor:
        return self.feed([token])[0]

    def save(self):
        return (len(self.history), self.epoch)

    def restore(self, saved) -> None:
        length, epoch = saved
        if epoch == self.epoch and length >= self.cached_from and self.crop is not None:
            self.cache = self.crop(self.cache, length - self.cached_from, self.cached)
            self.cached = length - self.cached_from
            del self.history[length:]
            return
        del self.history[length:]
        self._restart(min(self.window // 2, length))


def gpt_decoder(module, vocab, device) -> WindowedDecoder:
    """Our GPT (models/transformer.py) through its key/value cache."""
    def crop(cache, n, current):
        cache.length = n
        return cache

    return WindowedDecoder(lambda ids, cache: module.forward_cached(ids, cache), module.new_cache, crop,
                           module.config.block_size, vocab, device)


def hf_decoder(module, vocab, window, device) -> WindowedDecoder:
    """A transformers causal LM through its past_key_values."""
    import inspect

    # transformers 5 calls the key/value cache `cache`; earlier versions `past_key_values`
    name = "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"

    def run(ids, cache):
        out = module(input_ids=ids, use_cache=True, **{name: cache})
        return out.logits.float(), out[name] if name in out else out.past_key_values

    def crop(cache, n, current):
        if cache is None or not hasattr(cache, "crop"):
            raise AttributeError
        if n < current:
            try:
                cache.crop(n - current)  # negative: drop that many from the end (what every cache layer accepts)
            except (ValueError, TypeError):
                cache.crop(n)
        return cache

    decoder = WindowedDecoder(run, lambda: None, crop, window, vocab, device)
    base_restore = decoder.restore

    def restore(saved):
        try:
            base_restore(saved)
        except (AttributeError, ValueError, TypeError):  # a cache that cannot be cut back: rebuild it
            decoder.epoch += 1
            base_restore(saved)

    decoder.restore = restore
    return decoder


class StreamDecoder:
    """A model that offers only its scoring stream (`stream(ids (1, L), state) -> (logits, state)`): each feed is
    one call with the state carried over; save() keeps a copy of the state."""

    def __init__(self, stream, vocab_size: int, device):
        self.stream, self.vocab, self.device = stream, vocab_size, device
        self.state = None  # the stream's initial state
        self.calls = new_calls()

    def feed(self, ids) -> torch.Tensor:
        ids = list(ids)
        if not ids:
            return torch.zeros(0, self.vocab)
        count(self.calls, len(ids), step=len(ids) == 1)
        logits, self.state = self.stream(torch.as_tensor(ids, dtype=torch.long, device=self.device)[None], self.state)
        return logits[0, :, : self.vocab].float()

    def prefill(self, ids) -> torch.Tensor:
        return prefill_in_chunks(self.feed, ids)

    def step(self, token: int) -> torch.Tensor:
        return self.feed([token])[0]

    def save(self):
        return copy.deepcopy(self.state)

    def restore(self, saved) -> None:
        self.state = copy.deepcopy(saved)  # a stream may update its state in place: keep `saved` reusable


def window_decoder(window_fn, window: int, vocab, device) -> WindowedDecoder:
    """A model that offers only its scoring window (`window(ids (1, L), mask) -> logits`): the "cache" is the
    token ids in the window, each call runs the window over all of them (no reuse, the same logits)."""
    def run(ids, cached):
        cached = torch.cat([cached.to(ids.device), ids], dim=1)
        return window_fn(cached, torch.ones_like(cached))[:, -ids.shape[1]:].float(), cached

    def crop(cached, n, current):
        return cached[:, :n]

    return WindowedDecoder(run, lambda: torch.zeros(1, 0, dtype=torch.long, device=device), crop, window, vocab,
                           device)


def scoring_decoder(model, **options):
    """The decoder of a model that names none (LoadedModel.decoder) and whose network has no make_decoder: built
    on what the model is scored with. BadInput for options it does not take or a model with neither way."""
    if options:
        raise BadInput(f"model {model.name!r}: its decoder takes no options (given: {', '.join(sorted(options))})")
    vocab = model.tokenizer.vocab_size
    if model.stream is not None:
        return StreamDecoder(model.stream, vocab, model.device)
    if model.window is not None and model.max_length:
        return window_decoder(model.window, model.max_length, vocab, model.device)
    raise BadInput(f"model {model.name!r}: has no decoder for generation (neither a stream nor a window with its "
                   f"max_length)")


def make_decoder(model, **options):
    """The decoder a LoadedModel (models.load_model) chooses for itself (LoadedModel.make_decoder). A Mamba takes
    fused=False: its reference step (MambaLM.step), against which the fused one is tested."""
    return model.make_decoder(**options)
