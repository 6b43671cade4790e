"""The shape every fine-tuning method implements, plus parameter bookkeeping they share.

A method adapts a freshly built task model (`apply`) and saves what it trained (`save`). Its
`artifact` names the folder in the run directory: `model` for methods that change the
backbone's weights in place (a plain `save_pretrained` folder, loaded back with the task's Auto
class), `adapter` for methods saved in PEFT format, which also `load` the adapter onto a freshly
built base model. The task head is always trainable and always saved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ftcli.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from ftcli.config.schema import MethodConfig


class Method(Protocol):
    artifact: ClassVar[str]  # "model" or "adapter"
    default_lr: ClassVar[float]  # used when trainer.lr is null
    mergeable: ClassVar[bool]  # adapter methods: can `export merge=true` fold it into plain weights

    def apply(self, model: nn.Module, cfg: MethodConfig, head: list[str]) -> nn.Module:
        """Adapt `model` and set `requires_grad` on exactly the parameters to train."""

    def save(self, model: nn.Module, directory: Path, cfg: MethodConfig) -> None:
        """Write what is needed to rebuild the trained model into `directory`."""

    def load(self, base: nn.Module, directory: Path) -> nn.Module:
        """Adapter methods only: the trained model from a freshly built `base` and the saved folder."""


METHODS: Registry[Method] = Registry("method")


def lr_scale_of(method: Method, cfg: MethodConfig) -> Callable[[str], float] | None:
    """The method's learning-rate factor per parameter name (LoRA+), or None when all share one rate."""
    scale = getattr(method, "lr_scale", None)
    return scale(cfg) if scale else None


def head_modules(model: nn.Module) -> list[str]:
    """Names of the task-head modules: the model's own children with parameters, outside the backbone.

    For BERT sequence classification that is `classifier`; DistilBERT adds `pre_classifier`,
    GPT-2 has `score`. Found structurally rather than from a per-architecture table. A language
    model (summarisation, translation, causal LM) has none: its output layer is pretrained and
    tied to the embeddings, part of what a method adapts rather than a head to add.
    """
    if model.get_output_embeddings() is not None:
        return []
    prefix = getattr(model, "base_model_prefix", "")
    return [
        name
        for name, child in model.named_children()
        if name != prefix and any(True for _ in child.parameters())
    ]


@dataclass(frozen=True)
class ParameterCount:
    trainable: int
    trainable_without_head: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "trainable": self.trainable,
            "trainable_without_head": self.trainable_without_head,
            "total": self.total,
            "trainable_percent": round(self.percent, 4),
        }


def count_parameters(model: nn.Module, head: list[str]) -> ParameterCount:
    """Trainable parameters with and without the head, and the total.

    PEFT keeps a frozen copy of each saved module beside the trained one; those copies are not
    counted, so `total` is the size of the model that is actually used.
    """
    trainable = without_head = total = 0
    for name, param in model.named_parameters():
        parts = name.split(".")
        if "original_module" in parts:
            continue
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
            if not set(parts) & set(head):
                without_head += param.numel()
    return ParameterCount(trainable, without_head, total)


class WholeModelMethod:
    """Methods that train some of the model's own weights and save the whole model (`model/`)."""

    artifact = "model"
    mergeable = True  # nothing to merge: the weights are already whole

    def save(self, model: nn.Module, directory: Path, cfg: MethodConfig) -> None:
        model.save_pretrained(directory, safe_serialization=True)


def freeze_all_but_head(model: nn.Module, head: list[str]) -> None:
    """Freeze every parameter, then unfreeze the task head."""
    model.requires_grad_(False)
    for name in head:
        model.get_submodule(name).requires_grad_(True)

