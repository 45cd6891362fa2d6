"""Fingerprints of noised text for cell inputs: the sha256 of texts, and of the code behind a noise spec."""

from __future__ import annotations

import hashlib
from pathlib import Path


def texts_sha256(texts: list[str]) -> str:
    """The sha256 of a list of texts, as a corpus's (corpus.Corpus.sha256)."""
    from robustbench_bytes.data.corpus import Corpus

    return Corpus("", list(texts)).sha256


_PROBE = ("The quick brown fox jumps over the lazy dog, 1234567890 times. Ça coûte 5 €; naïve café — "
          "ünïcödé, 日本語のテキスト, emoji 🦉.\n") * 8


def noise_code_sha256(spec: str, seed: int) -> str:
    """A fingerprint of the code behind a noise spec, for cells whose noised text is not known before scoring
    (lm-eval's): the sha256 of the source files of each part's transform and of the spec applied to a probe text."""
    import inspect

    from robustbench_bytes import noise as noise_lib

    h = hashlib.sha256(noise_lib.apply(_PROBE, spec, seed=seed).encode("utf-8", "surrogatepass"))
    for part in noise_lib.parse(spec):
        try:
            source = inspect.getsourcefile(inspect.unwrap(part.noise.transform))  # a plug-in's, not its guard's
            h.update(Path(source).read_bytes() if source else b"")
        except (OSError, TypeError):  # a transform without a source file: the probe alone stands for it
            pass
    return h.hexdigest()
