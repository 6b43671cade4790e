"""Knowledge distillation: a student learns its labels and a teacher's class probabilities together.

The loss of a batch (Hinton et al., 2015) is

    (1 − α) · L_task + α · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))

with `L_task` the model's own loss, z_t and z_s the teacher's and the student's logits, and the KL
a mean over the predictions that have a target (rows, supervised tokens; QA: the mean over its
start and end heads, as its loss is). T² keeps the soft term's gradient on the scale of the hard
term's as T changes.

The teacher is not run while training: its logits are computed once beforehand and kept in each
training feature under `TEACHER` (`ftcli.runs.teacher`). `DistillStep.collator` batches them
beside the model's inputs, and `loss` takes them out of the batch before the forward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftcli.engine.step import Batch, ClassScores, Collate, ModelLoss, Objective, WrappedStep, cross_entropy

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

TEACHER = "teacher_logits"  # the feature and batch key of the teacher's logits


def distillation_kl(student: ClassScores, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(teacher / T) ‖ softmax(student / T)), a mean over the rows of `student` that hold a
    prediction; `teacher` is shaped like `student.logits`. A class the teacher scores −inf (a padding
    position of a QA window) has no teacher probability and adds nothing."""
    import torch.nn.functional as F

    kept = student.kept()
    log_s = F.log_softmax(student.logits[kept].float() / temperature, dim=-1)
    log_t = F.log_softmax(teacher[kept].float() / temperature, dim=-1)
    p_t = log_t.exp()
    terms = p_t * (log_t.masked_fill(p_t == 0, 0.0) - log_s)  # 0 · log 0 = 0
    return terms.sum() / kept.sum().clamp(min=1)


def teacher_heads(teacher: torch.Tensor, objective: Objective) -> list[torch.Tensor]:
    """The batch's teacher logits cut like `ModelLoss.scores` cuts the student's: QA's (rows, tokens, 2)
    into start and end, the others to one row per prediction."""
    if objective is Objective.spans:
        return list(teacher.unbind(-1))
    return [teacher.reshape(-1, teacher.shape[-1])]


class DistillStep(WrappedStep):
    """The task's own loss blended with the KL to the teacher's cached logits (the module's formula)."""

    def __init__(self, inner: ModelLoss, temperature: float, alpha: float, smoothing: float = 0.0) -> None:
        super().__init__(inner)
        self.scored = inner
        self.temperature, self.alpha = temperature, alpha
        self.smoothing = smoothing  # label smoothing of the task's own cross-entropy (`trainer.label_smoothing`)
        self.kl_sum: torch.Tensor | float = 0.0  # on the device between log records, weighted by units
        self.units_seen: torch.Tensor | int = 0

    def collator(self, collate: Collate) -> Collate:
        return TeacherCollator(self.inner.collator(collate))

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        import torch

        inputs = {key: value for key, value in batch.items() if key != TEACHER}
        out, heads = self.scored.scores(model, inputs)
        teachers = teacher_heads(batch[TEACHER], self.scored.objective)
        kl = torch.stack([distillation_kl(h, t, self.temperature) for h, t in zip(heads, teachers)]).mean()
        units = self.scored.units(inputs)
        self.kl_sum = self.kl_sum + kl.detach() * units
        self.units_seen = self.units_seen + units
        own = out.loss if not self.smoothing else torch.stack([cross_entropy(h, self.smoothing) for h in heads]).mean()
        return (1 - self.alpha) * own + self.alpha * self.temperature**2 * kl

    def logged(self) -> dict[str, float]:
        """The mean KL at T since the last record (`distill_kl`), beside what the inner step logs."""
        figures = {**self.inner.logged()}
        if self.units_seen:
            figures["distill_kl"] = float(self.kl_sum) / float(self.units_seen)
        self.kl_sum, self.units_seen = 0.0, 0
        return figures


class TeacherCollator:
    """Batches features with `collate`, leaving their teacher logits out, and adds those as one tensor.

    Per-text logits stack to (rows, classes). Per-token ones (tokens, classes) are placed at each
    row's real tokens, where its attention mask is 1, whichever side the batch is padded on; the
    padding positions get −inf (no teacher probability).
    """

    def __init__(self, collate: Collate) -> None:
        self.collate = collate

    def __call__(self, features: list[dict[str, Any]]) -> Batch:
        batch = dict(self.collate([{k: v for k, v in f.items() if k != TEACHER} for f in features]))
        batch[TEACHER] = teacher_batch([f[TEACHER] for f in features], batch.get("attention_mask"))
        return batch


def teacher_batch(logits: list[np.ndarray], attention_mask: torch.Tensor | None) -> torch.Tensor:
    """One tensor of the features' teacher logits, laid out like the batch (see `TeacherCollator`)."""
    import numpy as np
    import torch

    if logits[0].ndim == 1:
        return torch.from_numpy(np.stack(logits)).float()
    if attention_mask is None:
        raise ValueError("per-token teacher logits need the batch's attention mask to find each row's tokens")
    rows, length = attention_mask.shape
    out = torch.full((rows, length, logits[0].shape[-1]), float("-inf"))
    for row, values in enumerate(logits):
        out[row, attention_mask[row].bool()] = torch.from_numpy(np.asarray(values)).float()
    return out
