"""The shape every fine-tuning method implements, plus parameter bookkeeping they share.

A method adapts a freshly built task model (`apply`) and saves what it trained (`save`). Its
`artifact` names the folder in the run directory: `model` for methods that change the
backbone's weights in place (a plain `save_pretrained` folder, loaded back with the task's Auto
class), `adapter` for methods saved in PEFT format, which also `load` the adapter onto a freshly
built base model. The task head is always trainable and always saved.

Beyond that, a method answers what the rest of ftcli needs to know about it through declared
hooks, never by being probed for attributes: how many positions its virtual tokens take
(`virtual_tokens`), a per-parameter learning-rate factor (`lr_scale`), whether it learns
virtual tokens at all (`prompt_learning`), how it folds into plain weights (`mergeable`,
`merge`), and how the base model runs through the adapted one (`switch_off`).
`MethodBase` gives every hook the answer of a method that does none of these things.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NoReturn, Protocol, TypeVar, cast

from ftcli.registry import Registry

if TYPE_CHECKING:
    from typing import TypeAlias

    from peft import PeftModel
    from torch import nn
    from transformers import PreTrainedModel

    from ftcli.config.schema import MethodConfig

    AdaptedModel: TypeAlias = PreTrainedModel | PeftModel
    """What a method makes of a task model: the model itself, changed in place, or PEFT's wrapper around it."""

M = TypeVar("M", bound="MethodConfig")
M_contra = TypeVar("M_contra", bound="MethodConfig", contravariant=True)


class Method(Protocol[M_contra]):
    """What a fine-tuning method provides to the commands.

    `M_contra` is the method's config class (registered with it); `cfg` is always an instance of it.
    """

    artifact: ClassVar[str]  # "model" or "adapter"
    default_lr: ClassVar[float]  # used when trainer.lr is null
    mergeable: ClassVar[bool]  # can `export merge=true` fold it into plain weights (`merge`)
    # Learns virtual tokens in front of the input or of every layer's keys and values (PEFT's prompt
    # learning): cross-group rules ask this, e.g. packed batches cannot keep such examples apart.
    prompt_learning: ClassVar[bool]

    def apply(self, model: PreTrainedModel, cfg: M_contra, head: list[str]) -> AdaptedModel:
        """Adapt `model` and set `requires_grad` on exactly the parameters to train."""

    def save(self, model: AdaptedModel, directory: Path, cfg: M_contra) -> None:
        """Write what is needed to rebuild the trained model into `directory`."""

    def load(self, base: PreTrainedModel, directory: Path) -> AdaptedModel:
        """Adapter methods only: the trained model from a freshly built `base` and the saved folder."""

    def virtual_tokens(self, cfg: M_contra) -> int:
        """Positions the method's virtual tokens take in front of the input (0: none); the task's
        `max_length` plus these must fit the model's position table."""

    def lr_scale(self, cfg: M_contra) -> Callable[[str], float] | None:
        """The learning-rate factor per parameter name (LoRA+), or None when all share one rate."""

    def merge(self, model: AdaptedModel) -> PreTrainedModel:
        """The adapted `model` as plain weights that load without ftcli or PEFT; refused (ModelError)
        when the method is not `mergeable`."""

    def switch_off(self, model: AdaptedModel) -> AbstractContextManager[None] | None:
        """A context in which `model` computes what its base model computes (the reference policy of
        preference losses), without a second copy; None for a method that trains the base weights
        themselves, whose base model can only be loaded again (`ftcli.engine.frozen`)."""


METHODS: Registry[Method[Any]] = Registry("method")


class MethodBase(Generic[M]):
    """Every hook's answer for a method that has no virtual tokens, one learning rate and nothing to merge.

    Methods subclass it (through `WholeModelMethod`, `PeftMethod` or `NativeMethod`) and override
    the hooks they need, so every registered method answers every hook of `Method`.
    """

    artifact: ClassVar[str]
    default_lr: ClassVar[float]
    mergeable: ClassVar[bool] = False
    prompt_learning: ClassVar[bool] = False

    def virtual_tokens(self, cfg: M) -> int:
        return 0

    def lr_scale(self, cfg: M) -> Callable[[str], float] | None:
        return None

    def merge(self, model: AdaptedModel) -> PreTrainedModel:
        refuse_merge(self)

    def switch_off(self, model: AdaptedModel) -> AbstractContextManager[None] | None:
        return None


def refuse_merge(method: object) -> NoReturn:
    """Raise the error of a method whose trained parts no weight matrix can hold.

    `ftcli export` refuses `merge=true` for such a method before it loads anything, with the
    method's name; this is the guard for any other caller.
    """
    from ftcli.errors import ModelError

    raise ModelError(
        f"{type(method).__name__} cannot be merged into plain weights: its bottleneck layers or virtual "
        "tokens are extra computation that no weight matrix can hold",
        hint="save it with the method's own format instead",
    )


def head_modules(model: PreTrainedModel) -> list[str]:
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


class WholeModelMethod(MethodBase[M]):
    """Methods that train some of the model's own weights and save the whole model (`model/`)."""

    artifact = "model"
    mergeable = True  # nothing to merge: the weights are already whole

    def load(self, base: PreTrainedModel, directory: Path) -> AdaptedModel:
        raise NotImplementedError(f"{type(self).__name__} saves the whole model, not an adapter to load")

    def save(self, model: AdaptedModel, directory: Path, cfg: M) -> None:
        model.save_pretrained(str(directory), safe_serialization=True)

    def merge(self, model: AdaptedModel) -> PreTrainedModel:
        """The model itself: its trained weights are already the model's own."""
        return cast("PreTrainedModel", model)  # a whole-model method leaves the transformers model unwrapped


def freeze_all_but_head(model: nn.Module, head: list[str]) -> None:
    """Freeze every parameter, then unfreeze the task head."""
    model.requires_grad_(False)
    for name in head:
        model.get_submodule(name).requires_grad_(True)

