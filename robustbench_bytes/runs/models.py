"""The models of a run: each spec resolved once (its fingerprint, without loading), loaded from that at most once."""

from __future__ import annotations

from robustbench_bytes.errors import BadInput, first_line


class ModelCache:
    """Resolves each model spec once (its fingerprint, without loading), and loads each model at most once,
    when its first cell needs scoring; keeps one in memory at a time (the grid is model-major)."""

    def __init__(self, device: str):
        self.device = device
        self._resolved: dict[str, object] = {}
        self._loaded: dict[str, object] = {}
        self._errors: dict[str, str] = {}

    def describe(self, spec: str) -> dict:
        """What the manifest records of a model: fingerprint and file hashes, or why it cannot be used."""
        resolved = self.resolve(spec)
        if resolved is None:
            return {"error": self._errors[spec]}
        return {"model_fingerprint": resolved.fingerprint(), "checkpoint_sha256": resolved.weights_sha256(),
                "files": resolved.file_hashes()}

    def resolve(self, spec: str):
        if spec not in self._resolved and spec not in self._errors:
            from robustbench_bytes.models import resolve_model

            try:
                self._resolved[spec] = resolve_model(spec)
            except Exception as e:  # a broken checkpoint fails its cells, not the whole run
                self._errors[spec] = describe_error(e)
        return self._resolved.get(spec)

    def get(self, spec: str):
        resolved = self.resolve(spec)
        if spec in self._errors:  # it could not be resolved, or an earlier load failed
            raise ModelUnavailable(self._errors[spec])
        if spec not in self._loaded:
            from robustbench_bytes.models import load_resolved

            self._loaded.clear()
            try:
                self._loaded[spec] = load_resolved(resolved, device=self.device)
            except Exception as e:  # a corrupt checkpoint fails its cells, not the whole run
                self._errors[spec] = describe_error(e)
                raise ModelUnavailable(self._errors[spec]) from None
        return self._loaded[spec]


class ModelUnavailable(Exception):
    """A model of the grid that cannot be resolved or loaded: its cells fail with this message."""


def describe_error(error: BaseException) -> str:
    """One line for a failed cell: our own errors as they are, anything else with its type."""
    if isinstance(error, BadInput):
        return first_line(error)
    return f"{type(error).__name__}: {first_line(error)}" if str(error).strip() else type(error).__name__
