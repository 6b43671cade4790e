"""What bound tasks share: the state they are bound to, and the logits path of the tasks scored on logits.

Tasks that generate share `ftcli.tasks.generating.GeneratingTask` instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ftcli.engine.frozen import FrozenModels
from ftcli.errors import ModelError

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from torch import nn
    from transformers import PreTrainedTokenizerBase
    from transformers.generation.streamers import BaseStreamer

    from ftcli.config.schema import DataConfig, TaskConfig
    from ftcli.engine.inference import Outputs
    from ftcli.engine.step import Collate
    from ftcli.tasks.base import Autocast, Feature, TaskKind

C = TypeVar("C", bound="TaskConfig")


@dataclass
class BoundTask(Generic[C]):
    """A task kind bound to one run's settings, data columns, label set and tokenizer."""

    kind: TaskKind[C]
    cfg: C
    data: DataConfig
    labels: list[str]
    tokenizer: PreTrainedTokenizerBase
    frozen: FrozenModels = field(default_factory=FrozenModels, repr=False, kw_only=True)

    def precompute(self, model: nn.Module, features: dict[str, list[Feature]], store: Path, batch_size: int,
                   autocast: Autocast) -> None:
        return None


class LogitsTask(BoundTask[C], ABC):
    """A task scored on its head's logits from one forward pass (`ftcli.engine.inference.run_inference`)."""

    @property
    def generation(self) -> None:
        return None

    @abstractmethod
    def metrics(self, logits: Any, features: list[Feature]) -> dict[str, Any]:
        """The task's own scores for one split: `logits` against the labels `encode` put in `features`."""

    def logits_of(self, out: Any) -> torch.Tensor:
        """The tensor of the model's output that `metrics` and `predictions` read: its `logits`."""
        return out.logits

    def outputs(
        self, model: nn.Module, features: list[Feature], batch_size: int, autocast: Autocast,
        streamer: BaseStreamer | None = None,
    ) -> Outputs:
        """Logits for every feature (`streamer` is for generated text; there is none here)."""
        from ftcli.engine.inference import run_inference

        return run_inference(model, features, self.collator(), batch_size, autocast, self.logits_of)

    def scores(self, outputs: Outputs, features: list[Feature]) -> dict[str, Any]:
        return {"loss": outputs.loss, **self.metrics(outputs.logits, features)}

    @abstractmethod
    def collator(self) -> Collate:
        """Pads features into a batch of model inputs; the logits are read from batches it makes."""


def require_fast_tokenizer(tokenizer: PreTrainedTokenizerBase, task: str, needed_for: str) -> None:
    """A ModelError unless `tokenizer` is a fast one (backed by the `tokenizers` library), which
    alone reports word ids and character offsets."""
    if not tokenizer.is_fast:
        raise ModelError(
            f"task={task} needs a fast tokenizer (one backed by the `tokenizers` library) {needed_for}; "
            f"{type(tokenizer).__name__} is not one",
            hint="pick a model that ships a tokenizer.json",
        )
