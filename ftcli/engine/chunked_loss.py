"""The next-token cross-entropy of a causal LM without its (tokens x vocabulary) logits (`trainer.chunked_cross_entropy`).

A causal LM's output layer turns each position's final hidden state into one score per vocabulary
entry: at 8k tokens and Llama 3's 128k vocabulary that is 4 GiB of float32 logits, plus as much
again for their gradient, often more than the whole model's activations. Here the model runs with
`logits_to_keep` set to no position at all, so its head computes nothing; the final hidden states
are taken from the backbone's output (a forward hook), only the positions that carry a label are
kept, and the cross-entropy is summed over chunks of `trainer.cross_entropy_chunk_tokens` of them.
Each chunk goes through `torch.utils.checkpoint`, which keeps only its inputs and recomputes its
logits in the backward pass, so at most one chunk's logits exist at a time. The loss and the
gradients are those of the model's own loss (the mean over the shifted labels that are not
IGNORE_INDEX, as `LossUnit.next_tokens` counts them), to float rounding.

Refused, with the reason, where it would change the loss: an output layer that is not a plain
linear layer (a LoRA on it, a wrapped head), logits the model rescales or soft-caps after the
output layer, a head this module does not know how to reach, and tasks whose loss is not the
model's own next-token cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ftcli.engine.step import IGNORE_INDEX, Batch, LossUnit, ModelLoss, TrainingStep
from ftcli.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from torch import nn

SETTING = "trainer.chunked_cross_entropy=true"
# config fields of models that change the logits after the output layer
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def chunked_step(step: TrainingStep, model: nn.Module, chunk_tokens: int) -> ChunkedNextTokenLoss:
    """The task's `step` with its loss computed in chunks; refused where that is not the same loss."""
    if not (type(step) is ModelLoss and step.unit is LossUnit.next_tokens):
        raise ConfigError(
            f"{SETTING}: this task's loss is not a causal LM's next-token cross-entropy over its labels, "
            "so there are no vocabulary logits to chunk",
            hint="drop trainer.chunked_cross_entropy (it applies to task=instruction and task=feedback)",
        )
    check_model(model)
    return ChunkedNextTokenLoss(step.unit, step.objective, chunk_tokens=chunk_tokens)


def check_model(model: nn.Module) -> None:
    """Refuse a model whose loss the chunked form would not reproduce."""
    from torch import nn

    base = _transformers_model(model)
    head = base.get_output_embeddings()
    if type(head) is not nn.Linear:
        kind = type(head).__name__
        raise ConfigError(
            f"{SETTING}: the output layer is a {kind}, not a plain linear layer (a LoRA or another adapter on it?), "
            "and the chunked loss computes the logits from the layer's weight itself",
            hint="leave the output layer out of method.target_modules (e.g. not all-linear with lm_head), "
            "or drop trainer.chunked_cross_entropy",
        )
    config = base.config
    scaled = [name for name in LOGIT_TRANSFORMS if getattr(config, name, None) not in (None, 1, 1.0)]
    if scaled:
        raise ConfigError(
            f"{SETTING}: this {config.model_type} model transforms its logits after the output layer "
            f"({', '.join(scaled)}), which the chunked loss would leave out",
            hint="drop trainer.chunked_cross_entropy for this model",
        )
    pre_head(base)


def _transformers_model(model: Any) -> Any:
    """The `transformers` model inside PEFT's wrapper, if any."""
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


def pre_head(model: Any) -> Optional[nn.Module]:
    """What runs between the backbone's last hidden state and the output layer: nothing (None) for
    GPT-2, Llama and most causal LMs, whose head is one linear layer; BERT-likes run as decoders
    (`cls.predictions`) transform the hidden state first."""
    names = {module: name for name, module in model.named_modules()}
    head_name = names.get(model.get_output_embeddings(), "")
    if "." not in head_name:  # a direct child, fed the backbone's output (lm_head)
        return None
    if head_name == "cls.predictions.decoder":
        transform: nn.Module = model.cls.predictions.transform
        return transform
    raise ConfigError(
        f"{SETTING}: the output layer of this {model.config.model_type} model ({head_name}) is not fed the "
        "backbone's last hidden state directly, and ftcli does not know what runs in between",
        hint="drop trainer.chunked_cross_entropy for this model",
    )


def next_token_cross_entropy(hidden: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor,
                             bias: Optional[torch.Tensor], chunk_tokens: int) -> torch.Tensor:
    """The mean cross-entropy of predicting `labels[:, t + 1]` from `hidden[:, t]` through the output
    layer (`weight`, `bias`), over the labels that are not IGNORE_INDEX, computed `chunk_tokens`
    positions at a time; no more than one chunk's logits are ever kept."""
    import torch
    from torch.utils.checkpoint import checkpoint

    targets = labels[:, 1:].reshape(-1)
    kept = (targets != IGNORE_INDEX).nonzero().squeeze(-1)
    states = hidden[:, :-1].reshape(-1, hidden.shape[-1]).index_select(0, kept)
    targets = targets.index_select(0, kept)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, len(targets), chunk_tokens):
        end = start + chunk_tokens
        total = total + checkpoint(_chunk_sum, states[start:end], targets[start:end], weight, bias,
                                   use_reentrant=False)
    return total / len(targets) if len(targets) else total * float("nan")  # the model's own loss is NaN too


def _chunk_sum(states: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor,
               bias: Optional[torch.Tensor]) -> torch.Tensor:
    """One chunk's summed cross-entropy, its logits in float32 as `transformers`' own loss takes them."""
    import torch.nn.functional as F

    logits = F.linear(states, weight, bias).float()
    return F.cross_entropy(logits, targets, reduction="sum")


@dataclass
class ChunkedNextTokenLoss(ModelLoss):
    """`ModelLoss` for next tokens, its loss computed from the last hidden states in chunks.

    `prepare` finds the output layer and hooks the backbone once; `loss` calls the model (so that
    DDP, `torch.compile` and PEFT's wrapper all see the forward pass) with no logits to keep, and
    computes the cross-entropy from what the hook caught.
    """

    chunk_tokens: int = 1024
    _hidden: list[Any] = field(default_factory=list, repr=False)  # the backbone's output, while `loss` runs
    _catching: bool = field(default=False, repr=False)
    _head: Any = field(default=None, repr=False)
    _transform: Any = field(default=None, repr=False)

    def prepare(self, accelerator: Accelerator, model: nn.Module) -> None:
        base = _transformers_model(model)
        self._head, self._transform = base.get_output_embeddings(), pre_head(base)
        base.base_model.register_forward_hook(self._catch)

    def _catch(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._catching:
            self._hidden.append(output[0] if isinstance(output, tuple) else output.last_hidden_state)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        import torch

        inputs = {k: v for k, v in batch.items() if k != "labels"}
        labels = batch["labels"]
        self._catching = True
        try:
            model(**inputs, logits_to_keep=torch.zeros(0, dtype=torch.long, device=labels.device), use_cache=False)
        finally:
            self._catching = False
        hidden = self._hidden.pop()  # one forward pass of the backbone, so one output
        self._hidden.clear()
        if hidden.shape[1] > labels.shape[1]:  # prompt tuning's virtual tokens come first
            hidden = hidden[:, -labels.shape[1]:]
        if self._transform is not None:
            hidden = self._transform(hidden)
        return next_token_cross_entropy(hidden, labels, self._head.weight, self._head.bias, self.chunk_tokens)
