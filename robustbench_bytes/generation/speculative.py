"""Speculative decoding as in MambaByte: a subword drafter proposes bytes, the byte-level verifier checks them
all in one chunk resumed from its saved state.

One round: the drafter drafts `draft_tokens` tokens; their bytes go through the verifier as one chunk; a drafted
byte is accepted while its rank under the verifier is below `beta`. A draft accepted whole is kept and the next
round starts from the chunk's state. At the first rejected byte the accepted prefix and the verifier's own byte
are kept, the verifier's state is recomputed from the saved one over exactly those bytes (nothing of a rejected
byte remains), and the drafter is brought back in step with the text. What happens in between is the policy:
  "word" (MambaByte's, the default): the verifier decodes byte by byte up to the next space or newline first;
  "redraft": the drafter drafts again at once, from the middle of a word if need be (its token healing holds the
      word's start back and spells it first).
After a rejection "word" pays a single verifier step per byte to the end of the word, where "redraft" lets the
next draft propose those bytes, at the price of a drafting round (drafter steps, a resync) per rejection. Which is
faster depends on what a verifier chunk costs against its single steps: on the CPU with the fused step, a chunk of
the zoo's model costs as much per byte as a step, and "word" is the faster (bench/results/generate.md); "redraft"
pays where chunks are much cheaper per byte than steps (a memory-bound verifier, a GPU). With beta 1 at temperature 0 every kept byte is the verifier's argmax: the output is
greedy decoding of the verifier (for a windowed verifier, a Transformer, while the text fits its window: past
it, plain and speculative decoding restart the window at different points).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from robustbench_bytes.generation.sampling import choose, ranks

BOUNDARIES = (0x20, 0x0A)  # space, newline: where byte-by-byte correction hands back to the drafter ("word")
POLICIES = ("word", "redraft")  # after a rejection: correct to the end of the word first / draft again at once
DEFAULT_POLICY = "word"  # the faster on the CPU (see above)


@dataclass
class DraftStats:
    drafts: int = 0
    drafted_bytes: int = 0
    accepted_bytes: int = 0
    whole_drafts: int = 0  # drafts accepted entirely
    drafted_tokens: int = 0  # drafter tokens proposed (of those that reach the verifier)
    agreed_tokens: int = 0  # of them, the ones whose every byte the verifier accepted (token agreement)
    calls: dict = field(default_factory=dict)  # network calls of the verifier and the drafter (decoders' `calls`)
    seconds: dict = field(default_factory=lambda: {"draft": 0.0, "verify": 0.0, "correct": 0.0, "resync": 0.0})


class _Clock:
    def __init__(self, seconds: dict):
        self.seconds, self.last = seconds, time.perf_counter()

    def lap(self, part: str):
        now = time.perf_counter()
        self.seconds[part] += now - self.last
        self.last = now


def speculative(verifier, drafter, context: list[int], prompt_text: bytes, max_bytes: int, emit,
                draft_tokens: int = 3, beta: float = 1.0, temperature: float = 0.0, top_k=None, generator=None,
                to_verifier=lambda b: b, to_text=lambda b: b, stats: DraftStats | None = None,
                policy: str = DEFAULT_POLICY) -> bytearray:
    """Generates up to max_bytes verifier bytes after `context` (the verifier's prefix + prompt ids); `emit(bytes)`
    receives each committed piece as it is decided. `prompt_text` is the prompt as the drafter reads it (UTF-8);
    to_verifier / to_text map drafter bytes to verifier bytes and back (CR LF verifiers; a CR LF split across two
    committed pieces reaches the drafter as CR LF, which only costs proposals). `policy`: what follows a rejection
    (POLICIES; see the module's docstring). Returns the bytes."""
    if policy not in POLICIES:
        raise ValueError(f"policy={policy!r}; expected one of {', '.join(POLICIES)}")
    stats = stats if stats is not None else DraftStats()

    def pick(row):
        return choose(row, temperature, top_k, generator)

    out = bytearray()
    if max_bytes == 0:
        return out
    logits = verifier.prefill(context)
    drafter.start(prompt_text)
    clock = _Clock(stats.seconds)

    text = bytearray(prompt_text)  # the drafter's view of the whole text (grows by appending: constant time)

    def commit(piece: bytes):
        if piece:
            out.extend(piece)
            text.extend(to_text(piece))
            emit(piece)

    while len(out) < max_bytes:
        saved = verifier.save()
        proposed, ended = drafter.propose(draft_tokens)
        proposed = to_verifier(proposed)[: max_bytes - len(out)]  # --max-bytes may end it mid-draft
        clock.lap("draft")
        stats.drafts += 1
        stats.drafted_bytes += len(proposed)
        rows = verifier.feed(proposed) if proposed else None
        accepted, row = 0, logits  # row: the verifier's logits for the byte after the accepted ones
        if proposed:
            for r in ranks(torch.cat([logits[None], rows[:-1]]), proposed):
                if r >= beta:
                    break
                row = rows[accepted]
                accepted += 1
        stats.accepted_bytes += accepted
        ends = [e for e in drafter.draft_ends if e <= len(proposed)]
        stats.drafted_tokens += len(ends)
        stats.agreed_tokens += sum(e <= accepted for e in ends)
        commit(proposed[:accepted])
        clock.lap("verify")
        if len(out) >= max_bytes:
            break
        whole = accepted == len(proposed)
        if whole and proposed and not ended:
            stats.whole_drafts += 1
            logits = row  # the chunk's state is the state after exactly the accepted bytes
            drafter.accept_all()
            clock.lap("resync")
            continue
        own = pick(row)
        if whole:  # nothing was rejected (an empty draft, or one that ended): the state is already right
            logits = verifier.step(own)
        else:  # recompute the state over the accepted bytes and the verifier's own byte, from the saved state
            verifier.restore(saved)
            logits = verifier.step(own) if accepted == 0 else verifier.feed(proposed[:accepted] + bytes([own]))[-1]
        commit(bytes([own]))
        while policy == "word" and len(out) < max_bytes and out[-1] not in BOUNDARIES:
            b = pick(logits)
            commit(bytes([b]))
            if len(out) < max_bytes:
                logits = verifier.step(b)
        clock.lap("correct")
        if len(out) >= max_bytes:
            break
        drafter.resync(text)
        clock.lap("resync")
    stats.calls = {"verifier": dict(verifier.calls)}
    if hasattr(drafter, "decoder"):
        stats.calls["drafter"] = dict(drafter.decoder.calls)
    return out
