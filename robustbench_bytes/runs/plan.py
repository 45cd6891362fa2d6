"""The perplexity grid: its cells (model spec x canonical noise x seed), from the models, noises and seeds asked for."""

from __future__ import annotations

from dataclasses import dataclass

from robustbench_bytes.errors import BadInput
from robustbench_bytes.results.schema import CLEAN, CLEAN_SEED, cell_key


@dataclass(frozen=True)
class Cell:
    """One cell of the grid: a model spec (as the user named it), a canonical noise spec, a seed."""

    model: str
    noise: str
    seed: int

    @property
    def key(self) -> str:
        return cell_key(self.model, self.noise, self.seed)


def expand_noises(noises: list[str], suite: str | None) -> list[str]:
    """Canonical noise specs, presets expanded, duplicates and `clean` dropped, first-seen order."""
    from robustbench_bytes import noise as noise_lib

    specs: list[str] = []
    if suite is not None:
        if suite not in noise_lib.PRESETS:
            known = ", ".join(sorted(noise_lib.PRESETS))
            raise BadInput(f"suite {suite!r}: no such noise preset (known: {known})")
        specs.extend(noise_lib.expand(suite))
    for spec in noises:
        specs.extend(noise_lib.expand(spec))
    out: list[str] = []
    for spec in specs:
        canonical = noise_lib.canonical(spec)
        if canonical != CLEAN and canonical not in out:
            out.append(canonical)
    return out


def build_grid(models: list[str], noises: list[str], seeds: list[int]) -> list[Cell]:
    """Model-major grid: for each model its clean cell, then every noise x seed."""
    seeds = list(dict.fromkeys(seeds)) or [0]
    cells: list[Cell] = []
    for model in dict.fromkeys(models):
        cells.append(Cell(model, CLEAN, CLEAN_SEED))
        for noise in noises:
            for seed in seeds:
                cells.append(Cell(model, noise, seed))
    return cells


def check_model_specs(specs: list[str]) -> None:
    """Fail fast (exit 2) on a model that names nothing; corrupt checkpoints fail their cells later."""
    from robustbench_bytes.models import source_for

    for spec in specs:
        source_for(spec)
