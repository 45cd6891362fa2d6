"""Character noise for robustness experiments (MambaByte / ByT5 / BLT style), vectorised over code points.

    >>> from robustbench_bytes import noise
    >>> noise.apply("an owl", "antspeak")
    ' A N O W L '
    >>> noise.canonical("repeat:p=.1")
    'repeat:p=0.1,max=3'
    >>> noise.expand("byt5")[:2]
    ['drop:p=0.1', 'repeat:p=0.2,max=3']
"""

from .apply import apply, apply_corpus, spec_hash, streams
from .errors import NoiseSpecError
from .registry import NOISES, PRESET_DESCRIPTIONS, PRESETS, Noise, Param, register_noise
from .spec import canonical, expand, is_preset, parse

__all__ = ["apply", "apply_corpus", "canonical", "expand", "is_preset", "parse", "spec_hash", "streams",
           "NoiseSpecError", "NOISES", "PRESETS", "PRESET_DESCRIPTIONS", "Noise", "Param",
           "register_noise"]
