"""Gradient accumulation: one optimiser step over k micro-batches of b rows has the gradient of one
batch of k·b rows, for losses over rows and over supervised tokens, with or without a step add-on
that runs extra passes.

The models are tiny, built from config with dropout off, so that the passes are deterministic and
only the loop's weighting of the micro-batches can tell the two runs apart.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ftcli.config.schema import EvalStrategy, Precision, Scheduler, TrainerConfig
from ftcli.engine.loop import Training, train_loop
from ftcli.engine.step import IGNORE_INDEX, LossUnit, ModelLoss, TrainingStep, WrappedStep

NO_DROPOUT = {
    "bert": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "classifier_dropout": 0.0},
    "gpt2": {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0},
}
# rows of uneven length: micro-batches of the same number of rows hold different numbers of tokens
LENGTHS = [3, 11, 5, 2, 9, 4, 12, 6, 7, 3]


class Quiet:
    def on_train_begin(self, total_steps): ...
    def on_step(self, step, record): ...
    def on_evaluate(self, step, record): ...
    def on_train_end(self): ...


def tiny(auto_class: type, arch: str, **config) -> nn.Module:
    from ftcli.models.tiny import tiny_config

    torch.manual_seed(0)
    return auto_class.from_config(tiny_config(arch, **NO_DROPOUT[arch], **config))


def collate(rows):
    """Right-padded input ids, attention mask and (per token or per row) labels."""
    longest = max(len(r["input_ids"]) for r in rows)
    pad = [longest - len(r["input_ids"]) for r in rows]
    batch = {
        "input_ids": torch.tensor([r["input_ids"] + [0] * n for r, n in zip(rows, pad)]),
        "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * n for r, n in zip(rows, pad)]),
    }
    if isinstance(rows[0]["labels"], list):
        batch["labels"] = torch.tensor([r["labels"] + [IGNORE_INDEX] * n for r, n in zip(rows, pad)])
    else:
        batch["labels"] = torch.tensor([r["labels"] for r in rows])
    return batch


def gradient_of_one_step(model: nn.Module, features: list[dict], step: TrainingStep, batch_size: int,
                         accumulate: int) -> dict[str, torch.Tensor]:
    """The gradient the loop's first optimiser step applies, by parameter name, and the loss it logs."""
    grads: dict[str, torch.Tensor] = {}
    for name, param in model.named_parameters():
        param.register_post_accumulate_grad_hook(lambda p, name=name: grads.__setitem__(name, p.grad.clone()))
    cfg = TrainerConfig(max_steps=1, batch_size=batch_size, grad_accum_steps=accumulate, group_by_length=False,
                        eval_strategy=EvalStrategy.no, precision=Precision.fp32, save_every=None, max_grad_norm=None,
                        warmup_ratio=0.0, scheduler=Scheduler.constant, logging_steps=1)
    state = train_loop(Training(model, features, collate, 1e-3, 0, lambda m: {}, Quiet(), step), cfg)
    assert state.step == 1 and state.samples == len(features)
    return {**grads, "logged loss": torch.tensor(state.history[0]["loss"])}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    assert a.keys() == b.keys() and a
    return all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-7) for k in a)


def classification_rows() -> list[dict]:
    return [{"input_ids": [101, *range(1000, 1000 + n), 102], "labels": i % 2} for i, n in enumerate(LENGTHS)]


def token_rows() -> list[dict]:
    """Token labels with the first and last tokens ([CLS], [SEP]) and every third one unsupervised."""
    rows = []
    for i, n in enumerate(LENGTHS[:8]):
        ids = [101, *range(2000 + i, 2000 + i + n), 102]
        labels = [IGNORE_INDEX if j in (0, len(ids) - 1) or j % 3 == 2 else (i + j) % 3 for j in range(len(ids))]
        rows.append({"input_ids": ids, "labels": labels})
    return rows


def instruction_rows() -> list[dict]:
    """Causal LM rows: a prompt of uneven length, unsupervised, then a response of uneven length."""
    rows = []
    for i, n in enumerate(LENGTHS[:8]):
        prompt, response = list(range(3000 + i, 3000 + i + n)), list(range(4000, 4000 + LENGTHS[-1 - i]))
        rows.append({"input_ids": prompt + response, "labels": [IGNORE_INDEX] * n + response})
    return rows


class EachAlike(ModelLoss):
    """Each micro-batch weighted alike, whatever it holds: the mean of the micro-batches' means."""

    def units(self, batch):
        return torch.tensor(1)


def test_rows_a_short_last_window_is_a_mean_over_the_rows_it_holds():
    """10 rows in micro-batches of 4, 4 and 2: the step is the mean over the 10 rows, not over 3 micro-batches."""
    from transformers import AutoModelForSequenceClassification

    rows = classification_rows()
    whole = gradient_of_one_step(tiny(AutoModelForSequenceClassification, "bert"), rows, ModelLoss(), 12, 1)
    accumulated = gradient_of_one_step(tiny(AutoModelForSequenceClassification, "bert"), rows, ModelLoss(), 4, 3)
    assert same(accumulated, whole)
    mean_of_means = gradient_of_one_step(tiny(AutoModelForSequenceClassification, "bert"), rows, EachAlike(), 4, 3)
    assert not same(mean_of_means, whole)


@pytest.mark.parametrize(
    ("auto_class", "arch", "rows", "unit"),
    [
        ("AutoModelForTokenClassification", "bert", token_rows, LossUnit.tokens),
        ("AutoModelForCausalLM", "gpt2", instruction_rows, LossUnit.next_tokens),
    ],
    ids=["token-classification", "causal-lm"],
)
def test_tokens_the_step_is_a_mean_over_every_supervised_token(auto_class, arch, rows, unit):
    """4 micro-batches of 2 rows hold different numbers of supervised tokens: weighted by them, the
    step equals one batch of 8; a mean of the micro-batches' means (weighting each alike) does not."""
    import transformers

    auto = getattr(transformers, auto_class)
    config = {"num_labels": 3} if arch == "bert" else {}
    whole = gradient_of_one_step(tiny(auto, arch, **config), rows(), ModelLoss(unit), 8, 1)
    accumulated = gradient_of_one_step(tiny(auto, arch, **config), rows(), ModelLoss(unit), 2, 4)
    assert same(accumulated, whole)
    mean_of_means = gradient_of_one_step(tiny(auto, arch, **config), rows(), ModelLoss(LossUnit.rows), 2, 4)
    assert not same(mean_of_means, whole)


class TwoPasses(WrappedStep):
    """An add-on of R-Drop's shape: two forward and backward passes per micro-batch, each half the loss."""

    def __init__(self, inner: TrainingStep) -> None:
        super().__init__(inner)
        self.passes = 0

    def backward(self, model, batch, backward):
        losses = []
        for _ in range(2):
            loss = self.loss(model, batch) / 2
            backward(loss)
            losses.append(loss.detach())
            self.passes += 1
        return sum(losses)


def test_an_add_on_with_extra_passes_accumulates_like_one_batch():
    """Without dropout two half-weighted passes have the gradient of one: the add-on's passes are
    weighted by the micro-batch's units like the task's own."""
    from transformers import AutoModelForTokenClassification

    whole = gradient_of_one_step(tiny(AutoModelForTokenClassification, "bert", num_labels=3), token_rows(),
                                 ModelLoss(LossUnit.tokens), 8, 1)
    step = TwoPasses(ModelLoss(LossUnit.tokens))
    accumulated = gradient_of_one_step(tiny(AutoModelForTokenClassification, "bert", num_labels=3), token_rows(),
                                       step, 2, 4)
    assert step.passes == 8
    assert same(accumulated, whole)
