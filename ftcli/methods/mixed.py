"""`mixed`: several parameter-efficient methods on one model, e.g. LoRA + bottleneck adapters, or
prefix tuning + LoRA (UniPELT's components, without its learned gates).

`method.components` picks the parts; each keeps its own settings (`method.lora.rank`,
`method.adapter.placement`, ...), and the settings of parts not picked are not used. They are applied in a fixed order: LoRA is injected into the linear layers first, bottleneck adapters
then wrap the output projections (a LoRA-adapted projection included), and a prompt method wraps
the result last, since PEFT's prompt learning must be the outermost model. PEFT runs one
prompt-learning method per model, so prefix tuning and prompt tuning do not combine. The union
of what each component trains is trained, with the head; the result is saved in ftcli's adapter
format.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, cast

from ftcli.config.schema import MethodConfig
from ftcli.methods.adapter import AdapterConfig, insert_bottlenecks
from ftcli.methods.base import METHODS, freeze_all_but_head
from ftcli.methods.lora import Lora, LoraConfig
from ftcli.methods.native import NativeMethod
from ftcli.methods.prompt import (
    PrefixTuning,
    PrefixTuningConfig,
    PromptMethod,
    PromptTuning,
    PromptTuningConfig,
    check_prefix_support,
)
from ftcli.registry import did_you_mean

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedModel

    from ftcli.methods.base import AdaptedModel

COMPONENTS = ("lora", "adapter", "prefix_tuning", "prompt_tuning")


@dataclass
class MixedConfig(MethodConfig):
    name: str = "mixed"
    components: list[str] = field(default_factory=lambda: ["lora", "adapter"])  # which of the blocks below run
    lora: LoraConfig = field(default_factory=LoraConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    prefix_tuning: PrefixTuningConfig = field(default_factory=PrefixTuningConfig)
    prompt_tuning: PromptTuningConfig = field(default_factory=PromptTuningConfig)

    def uses(self, component: str) -> bool:
        return component in self.components

    def parts(self) -> list[str]:
        """The picked components: each is a registered method of its own."""
        return list(self.components)

    def validate(self) -> list[str]:
        problems = [
            f"method.components has {name!r}{did_you_mean(name, list(COMPONENTS))}; choose from {', '.join(COMPONENTS)}"
            for name in self.components if name not in COMPONENTS
        ]
        if len(set(self.components)) < 2:
            problems.append(
                f"method.components={self.components} needs at least two of {', '.join(COMPONENTS)}"
                + (f"; for one alone use method={self.components[0]}" if self.components else "")
            )
        if self.uses("prefix_tuning") and self.uses("prompt_tuning"):
            problems.append(
                "method.components cannot hold both prefix_tuning and prompt_tuning: PEFT runs one "
                "prompt-learning method per model; keep one of them"
            )
        return problems


class Mixed(NativeMethod[MixedConfig]):
    default_lr = 1.0e-3

    def apply(self, model: PreTrainedModel, cfg: MixedConfig, head: list[str]) -> AdaptedModel:
        import peft

        if cfg.uses("prefix_tuning"):
            check_prefix_support(model)  # before any part is applied
        freeze_all_but_head(model, head)
        trained = _trainable(model)
        if cfg.uses("lora"):
            lora = Lora().peft_config(model, cfg.lora, head)
            lora.modules_to_save, lora.task_type = None, None  # the head is handled here, not by PEFT
            # injects into `model` itself and returns it, though typed as a plain module
            model = cast("PreTrainedModel", peft.inject_adapter_in_model(lora, model))
            trained |= _trainable(model)
        if cfg.uses("adapter"):
            insert_bottlenecks(model, cfg.adapter)
            trained |= _trainable(model)
        prompt = self._prompt(cfg)
        adapted: AdaptedModel = model
        if prompt is not None:
            method, settings = prompt
            with warnings.catch_warnings():  # stacking on the injected LoRA is intended here
                warnings.filterwarnings("ignore", message="You are trying to modify a model with PEFT")
                adapted = method.apply(model, settings, head)
            trained |= _trainable(adapted)
        for name, param in adapted.named_parameters():
            # PEFT's modules_to_save keeps the untouched original head beside the trained copy
            param.requires_grad = id(param) in trained and "original_module" not in name.split(".")
        return adapted

    def _prompt(self, cfg: MixedConfig) -> Optional[tuple[PromptMethod[Any], PrefixTuningConfig | PromptTuningConfig]]:
        """The prompt-learning part and its settings, if one is picked (at most one: `validate`)."""
        if cfg.uses("prefix_tuning"):
            return PrefixTuning(), cfg.prefix_tuning
        if cfg.uses("prompt_tuning"):
            return PromptTuning(), cfg.prompt_tuning
        return None

    def virtual_tokens(self, cfg: MixedConfig) -> int:
        """The prompt part's virtual tokens, as that method counts them; 0 without a prompt part."""
        prompt = self._prompt(cfg)
        return prompt[0].virtual_tokens(prompt[1]) if prompt else 0

    def switch_off(self, model: AdaptedModel) -> AbstractContextManager[None]:
        return _switched_off(model)

    def lr_scale(self, cfg: MixedConfig) -> Optional[Callable[[str], float]]:
        """The LoRA part's learning-rate factor (LoRA+); the other parts train at one rate."""
        return Lora().lr_scale(cfg.lora) if cfg.uses("lora") else None


@contextmanager
def _switched_off(model: AdaptedModel) -> Iterator[None]:
    """Every part off at once: the injected LoRA layers, the bottlenecks and the prompt part's virtual tokens."""
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    from ftcli.methods.bottleneck import switched_off

    lora = [m for m in model.modules() if isinstance(m, BaseTunerLayer) and not m.disable_adapters]
    with ExitStack() as parts:
        parts.enter_context(switched_off(model))
        if isinstance(model, PeftModel):
            parts.enter_context(model.disable_adapter())
        for layer in lora:
            layer.enable_adapters(False)
            # enabling again marks the layer's weights trainable, as they are in a mixed model
            parts.callback(layer.enable_adapters, True)
        yield


def _trainable(model: nn.Module) -> set[int]:
    return {id(p) for p in model.parameters() if p.requires_grad}


METHODS.register("mixed", MixedConfig)(Mixed())
