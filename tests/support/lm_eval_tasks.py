"""A local lm-evaluation-harness multiple-choice task (dataset_path: json, no hub) and the small model the
lm-eval tests score it with."""

from __future__ import annotations

import json
from pathlib import Path

from support.run_fakes import make_mamba_checkpoint

DOCS = [{"context": f"Item {i}: the {w} said that", "choices": ["yes", "no it did not", "maybe so"], "label": i % 3}
        for i, w in enumerate("owl fox dog cat hen ram".split())]
TASK_YAML = """task: rb_local_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
"""


def write_local_task(folder: Path) -> Path:
    """rb_local_mc.yaml and its data.jsonl (DOCS) in `folder` (an lm-eval --include-path)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    (folder / "rb_local_mc.yaml").write_text(TASK_YAML.format(data=data), encoding="utf-8")
    return folder


def lm_eval_model(folder: Path) -> str:
    """The random byte Mamba the lm-eval tests score with (a sharp head: its choices differ)."""
    return str(make_mamba_checkpoint(folder, seed=5, head_scale=3.0))
