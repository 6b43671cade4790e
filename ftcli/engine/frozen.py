"""The frozen models a task measures its trained model against: the reference policy of
preference losses and of online RL's KL term, and the reward models online RL scores with.

The reference is the model as it was before training. A method that leaves the base weights
untouched (LoRA and the PEFT family, IA3, prompt and prefix tuning, bottleneck adapters) can run
it by switching its adaptation off for one forward pass, so no second copy is held in memory. A
method that trains the base weights themselves (full, freeze, BitFit) cannot: its reference is
a second copy, loaded afresh from the model the run started from (never copied from the trained
model, which may already have moved, as in a resumed run). The commands build `FrozenModels`
from the method and the model settings; a task only asks for `reference(policy)`.

A reward model is a finished run of its own (`task=reward_model`), which only the layer that
reads run directories can load: it hands `FrozenModels` a loader, and a task asks for
`scorer(run_dir)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ftcli.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

SwitchOff = Callable[[Any], "AbstractContextManager[None] | None"]
ScoreTexts = Callable[[list[str], list[str]], list[float]]
"""A reward model's score of each (prompt, response) pair: `score(prompts, responses)`."""


@dataclass
class FrozenModels:
    """How to run the reference policy of a trained model.

    `switch_off` is the method's own way to run the base model through the adapted one
    (`ftcli.methods.base.Method.switch_off`); where it gives None (the method trains the base
    weights), `load_base` builds a copy of the base model, once, when the reference is first
    asked for. Neither: the run has no reference (a scorer), and asking for one is a ModelError.
    `load_scorer` loads the reward model of a run directory, once per directory.
    """

    switch_off: SwitchOff | None = None
    load_base: Callable[[], nn.Module] | None = None
    load_scorer: Callable[[str], ScoreTexts] | None = None
    _copy: nn.Module | None = field(default=None, repr=False)
    _scorers: dict[str, ScoreTexts] = field(default_factory=dict, repr=False)

    @contextmanager
    def reference(self, policy: nn.Module) -> Iterator[nn.Module]:
        """The reference model for `policy`, in eval mode and without gradients, for the block.

        `policy` is the model itself, not `accelerate`'s wrapper around it. With the adaptation
        switched off this is `policy`, whose own mode comes back after the block.
        """
        import torch

        from ftcli.engine.eval_mode import evaluating

        switched = self.switch_off(policy) if self.switch_off is not None else None
        if switched is not None:
            with torch.no_grad(), evaluating(policy), switched:
                yield policy
            return
        copy = self._loaded(policy)
        with torch.no_grad():
            yield copy

    def scorer(self, run_dir: str) -> ScoreTexts:
        """The scores of the reward-model run at `run_dir`, loaded when first asked for."""
        if self.load_scorer is None:
            raise ModelError(f"this run cannot load the reward model at {run_dir}")
        if run_dir not in self._scorers:
            self._scorers[run_dir] = self.load_scorer(run_dir)
        return self._scorers[run_dir]

    def release(self) -> None:
        """Drop the loaded copy (after its log-probabilities were computed once and kept)."""
        self._copy = None

    def _loaded(self, policy: nn.Module) -> nn.Module:
        if self.load_base is None:
            raise ModelError("this run has no reference model to compare the trained model with")
        if self._copy is None:
            device = next(policy.parameters()).device
            self._copy = self.load_base().to(device).eval().requires_grad_(False)
        return self._copy


NO_FROZEN_MODELS = FrozenModels()
"""For tasks that measure nothing against a frozen model, and for runs that have none."""
