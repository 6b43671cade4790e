"""What every PEFT-backed method shares: wrap, explain a target miss, save and load in PEFT format.

Each method supplies only its `peft_config(model, cfg, head)`; the head always goes into
`modules_to_save`, so it is trained and saved with the adapter.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ftcli.errors import ModelError
from ftcli.methods.base import M, MethodBase, refuse_merge

if TYPE_CHECKING:
    from peft import PeftConfig, PeftModel, TaskType
    from torch import nn
    from transformers import PreTrainedModel

    from ftcli.methods.base import AdaptedModel

TARGET_MISSES = ("not found in the base model", "No modules were targeted", "Target modules")


class PeftMethod(MethodBase[M]):
    artifact = "adapter"
    mergeable = True  # LoRA, IA3 and LN tuning change weights PEFT can fold back in (prompt methods cannot)
    layer_kind = "linear"  # what a target-miss message lists
    target_hint = "set method.target_modules to some of those names"

    def peft_config(self, model: PreTrainedModel, cfg: M, head: list[str]) -> PeftConfig:
        raise NotImplementedError

    def apply(self, model: PreTrainedModel, cfg: M, head: list[str]) -> AdaptedModel:
        import peft

        config = self.peft_config(model, cfg, head)
        try:
            return peft.get_peft_model(model, config)
        except ValueError as exc:
            if not any(miss in str(exc) for miss in TARGET_MISSES):
                raise
            raise ModelError(
                f"method.target_modules={_targets(config)} matched no module of this "
                f"{model.config.model_type} model; its {self.layer_kind} layers are: "
                f"{', '.join(self.candidate_names(model))}",
                hint=self.target_hint,
            ) from exc

    def candidate_names(self, model: PreTrainedModel) -> list[str]:
        return linear_names(model)

    def save(self, model: AdaptedModel, directory: Path, cfg: M) -> None:
        model.save_pretrained(str(directory), safe_serialization=True)

    def load(self, base: PreTrainedModel, directory: Path) -> AdaptedModel:
        from peft import PeftModel

        return PeftModel.from_pretrained(base, directory)

    def merge(self, model: AdaptedModel) -> PreTrainedModel:
        """PEFT folds the adapter into the base weights and drops its wrapper (`merge_and_unload`)."""
        if not self.mergeable:
            refuse_merge(self)
        # a PEFT method's trained model is always PEFT's wrapper (`apply`, `load`)
        merged: PreTrainedModel = cast("PeftModel", model).merge_and_unload()
        _unwrap_saved_modules(merged)
        return merged

    def switch_off(self, model: AdaptedModel) -> AbstractContextManager[None]:
        """PEFT's own switch: the adapter layers pass through, the head's untouched original runs
        in place of its trained copy, and a prompt method's virtual tokens are left out."""
        return cast("PeftModel", model).disable_adapter()


def _unwrap_saved_modules(model: PreTrainedModel) -> None:
    """Put each trained copy of a `modules_to_save` module (the task head) in its wrapper's place.

    `merge_and_unload` does this for LoRA and IA3, but LN tuning's leaves the head wrapped, so the
    merged model's weights would be saved as `classifier.modules_to_save.default.*` and a plain
    `from_pretrained` would start the head from random weights.
    """
    from peft.utils.other import ModulesToSaveWrapper

    for name, module in list(model.named_modules()):
        if isinstance(module, ModulesToSaveWrapper):
            parent, _, child = name.rpartition(".")
            active = [adapter for adapter in module.active_adapters if adapter in module.modules_to_save]
            trained = module.modules_to_save[active[0]] if active else module.original_module
            setattr(model.get_submodule(parent) if parent else model, child, trained)


def _targets(config: Any) -> Any:
    """The targets of a LoRA, IA3 or LN-tuning config (`PeftConfig` itself declares none)."""
    targets = config.target_modules
    return sorted(targets) if isinstance(targets, (set, list)) else targets


def linear_names(model: PreTrainedModel) -> list[str]:
    """The distinct last-segment names of the model's linear layers (what target_modules matches)."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, (nn.Linear, Conv1D))})


def uses_conv1d(model: PreTrainedModel) -> bool:
    """Whether the model's linear layers are GPT-2-style Conv1D (weights stored transposed).

    PEFT's LoRA and IA3 need `fan_in_fan_out=True` for them; passing it avoids PEFT's warning and
    its silent correction.
    """
    from transformers.pytorch_utils import Conv1D

    return any(isinstance(m, Conv1D) for m in model.modules())


def norm_names(model: PreTrainedModel, head: list[str]) -> list[str]:
    """The distinct last-segment names of the backbone's normalisation layers: LayerNorm, and the
    RMSNorm classes of Llama-likes and T5 (`LlamaRMSNorm`, `T5LayerNorm`), which are their own modules."""
    from torch import nn

    def is_norm(m: nn.Module) -> bool:
        return isinstance(m, nn.LayerNorm) or type(m).__name__.endswith(("RMSNorm", "LayerNorm"))

    return sorted({
        name.rsplit(".", 1)[-1]
        for name, m in model.named_modules()
        if is_norm(m) and name.split(".")[0] not in head
    })


HEAD_SUFFIXES = {
    "ForSequenceClassification": "SEQ_CLS",
    "ForTokenClassification": "TOKEN_CLS",
    "ForQuestionAnswering": "QUESTION_ANS",
    "ForMaskedLM": "FEATURE_EXTRACTION",  # PEFT has no masked-LM type; this one passes every input through
    "ForCausalLM": "CAUSAL_LM",
    "LMHeadModel": "CAUSAL_LM",  # GPT2LMHeadModel, BertLMHeadModel
    "ForConditionalGeneration": "SEQ_2_SEQ_LM",
    "ForSeq2SeqLM": "SEQ_2_SEQ_LM",
    "EncoderDecoderModel": "SEQ_2_SEQ_LM",  # warm-started from an encoder (ftcli.models.warmstart)
}


def task_type(model: PreTrainedModel) -> TaskType:
    """PEFT's task type for a model, read from its head class (`BertForSequenceClassification` → SEQ_CLS)."""
    from peft import TaskType

    name = type(model).__name__
    for suffix, kind in HEAD_SUFFIXES.items():
        if name.endswith(suffix):
            return TaskType[kind]
    raise ModelError(f"{name} has no task head PEFT knows how to wrap")
