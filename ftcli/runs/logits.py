"""A finished run's logits on rows that another run encoded: what a teacher gives its student, and
what each run of an ensemble gives the ensemble.

Per-text heads (classification, pairs) read the rows the way the run itself was trained to: its
own tokenizer, task.max_length and columns. Per-token heads (ner, qa) read the other run's own
features, so that their logits sit at the same positions; the callers make sure both runs share
a vocabulary. Class columns come back in the other run's label order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ftcli.tasks.class_outputs import in_order
from ftcli.tasks.pipeline import outputs_of

if TYPE_CHECKING:
    from ftcli.data.readers import Row
    from ftcli.engine.inference import Outputs
    from ftcli.runs.trained import TrainedRun
    from ftcli.tasks.base import Feature


def run_logits(run: TrainedRun, per_token: bool, rows: list[Row], features: list[Feature], source: str,
               batch_size: int, labels: list[str]) -> list[np.ndarray]:
    """`run`'s float32 logits for each of `features` (the encoding of `rows` by the other run), their
    class axis in the order of `labels` (the same names as `run.labels`)."""
    inputs = features if per_token else run.task.encode(rows, source, with_labels=False)
    outputs: Outputs = outputs_of(run.task, run.model, inputs, batch_size, run.cfg.trainer.precision)
    if len(outputs.logits) != len(features):  # a per-text task encodes one feature per row
        raise AssertionError(f"{len(outputs.logits)} logits for {len(features)} features of {source}")
    return [in_order(np.asarray(values, dtype=np.float32), run.labels, labels) for values in outputs.logits]

