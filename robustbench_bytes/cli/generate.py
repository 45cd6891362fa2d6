"""`robustbench generate`: continue a prompt with any model, plainly or speculatively (subword drafter, byte
verifier); prints the continuation as it is decided, or one JSON object."""

from __future__ import annotations

import codecs
import json
import sys
from pathlib import Path

import click

from robustbench_bytes.cli.common import FiniteFloatRange, device_option, quiet_option, read_stdin
from robustbench_bytes.generation.speculative import DEFAULT_POLICY, POLICIES

# the options' ranges: a typo must not ask for a run that never ends or a draft that fills the memory
MAX_BYTES = 1 << 20
MAX_TEMPERATURE = 1000.0  # far beyond it the distribution is uniform to float precision
MAX_TOP_K = 1 << 24  # SIZE_LIMITS' largest vocabulary
MAX_SEED = (1 << 63) - 2  # torch takes seeds below 2^63; the drafter's generator is seeded with seed + 1
MAX_DRAFT_TOKENS = 256


def _prompt(prompt, prompt_file) -> str:
    if prompt is not None and prompt_file is not None:
        raise click.UsageError("--prompt and --prompt-file: give one of them, not both")
    if prompt is None and prompt_file is None:
        raise click.UsageError("missing --prompt TEXT or --prompt-file FILE")
    if prompt is not None:
        return prompt
    from robustbench_bytes.data.corpus import decode_utf8
    from robustbench_bytes.files import read_bytes
    from robustbench_bytes.errors import BadInput

    if prompt_file == "-":
        return decode_utf8(read_stdin(), "--prompt-file <stdin>")
    try:
        return decode_utf8(read_bytes(Path(prompt_file), "prompt file"), prompt_file)
    except BadInput as e:
        raise BadInput(f"--prompt-file {e}") from None


class _Stream:
    """Writes decided bytes to stdout as text, holding back a character split across pieces."""

    def __init__(self, newline: str):
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.crlf = newline == "crlf"

    def __call__(self, piece: bytes):
        text = self.decoder.decode(piece)
        if self.crlf:
            text = text.replace("\r", "")
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()


@click.command("generate")
@click.option("--model", "-m", "model_spec", required=True, metavar="MODEL",
              help="The model that generates (any level or architecture); with --draft, the byte-level verifier.")
@click.option("--draft", "draft_spec", default=None, metavar="SUBWORD_MODEL",
              help="Decode speculatively: this subword model drafts, MODEL (byte-level) verifies.")
@click.option("--prompt", "-p", default=None, metavar="TEXT", help="The text to continue.")
@click.option("--prompt-file", default=None, metavar="FILE", help="Read the prompt from FILE (UTF-8; - for stdin).")
@click.option("--max-bytes", default=256, show_default=True, type=click.IntRange(0, MAX_BYTES),
              help=f"UTF-8 bytes to generate, 0..{MAX_BYTES} (subword models may stop earlier at an end-of-text "
                   f"token).")
@click.option("--temperature", default=0.0, show_default=True, type=FiniteFloatRange(0, MAX_TEMPERATURE),
              help=f"0: greedy; otherwise (up to {MAX_TEMPERATURE:g}) sample from softmax(logits / T).")
@click.option("--top-k", default=None, type=click.IntRange(1, MAX_TOP_K),
              help="Sample from the K most likely only (K >= the vocabulary: no cut).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED),
              help="Seed of the sampling, 0..2^63-2.")
@click.option("--draft-tokens", default=3, show_default=True, type=click.IntRange(1, MAX_DRAFT_TOKENS),
              help=f"Tokens the drafter proposes per round, 1..{MAX_DRAFT_TOKENS}.")
@click.option("--beta", default=1.0, show_default=True, type=FiniteFloatRange(1, MAX_TOP_K),
              help="A drafted byte is accepted while its rank under the verifier is below beta (1: only the "
                   "verifier's own choice; greedy output then equals plain greedy decoding).")
@click.option("--policy", type=click.Choice(POLICIES), default=DEFAULT_POLICY, show_default=True,
              help="With --draft, after a rejected drafted byte: 'word' (MambaByte's) decodes with the verifier alone "
                   "to the end of the word; 'redraft' commits the verifier's byte and drafts again at once.")
@click.option("--threads", default=None, type=click.IntRange(1, 1024), metavar="N",
              help="Threads for decoding (torch's and numba's). Default: the cores this process may use.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (text, bytes, seconds, ...) instead.")
@device_option
@quiet_option("No progress bar.")
def generate(model_spec, draft_spec, prompt, prompt_file, max_bytes, temperature, top_k, seed, draft_tokens, beta,
             policy, threads, as_json, device, quiet):
    """Continue a prompt with MODEL, one step per byte (or token), or speculatively with --draft: the subword
    drafter proposes --draft-tokens tokens, the byte-level MODEL checks their bytes in one chunk."""
    from robustbench_bytes import generation as gen
    from robustbench_bytes.models import load_model
    from robustbench_bytes.progress import progress_bar

    text = _prompt(prompt, prompt_file)
    model = load_model(model_spec, device)
    draft = None
    if draft_spec is not None:
        if model.level != "byte":
            raise click.BadParameter(f"{model_spec!r} is a {model.level}-level model; with --draft the model "
                                     "must be byte-level (the verifier)", param_hint="--model")
        draft = load_model(draft_spec, device)
        if draft.level != "subword":
            raise click.BadParameter(f"{draft_spec!r} is a {draft.level}-level model; expected a subword model "
                                     "(the drafter)", param_hint="--draft")
    stream = None if as_json else _Stream(model.tokenizer.newline)
    show = not quiet and (as_json or not sys.stdout.isatty())  # never draw over the streamed text
    with progress_bar(show, total=max_bytes, unit="B", desc=f"generate {model.name}") as bar:
        def on_bytes(piece):
            bar.update(len(piece))
            if stream is not None:
                stream(piece)

        try:
            result = gen.generate(model, text, max_bytes=max_bytes, temperature=temperature, top_k=top_k,
                                  seed=seed, draft=draft, draft_tokens=draft_tokens, beta=beta, on_bytes=on_bytes,
                                  threads=threads, policy=policy)
        except gen.GenerationInterrupted as stop:
            bar.close()
            _finish(stop.partial, as_json)
            sys.exit(130)
    _finish(result, as_json)


def _finish(result, as_json: bool):
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        click.echo()
