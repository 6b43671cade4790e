"""Prompt-based methods through PEFT: `prompt_tuning`, `p_tuning` and `prefix_tuning`.

The backbone stays frozen; learned virtual tokens are prepended to the input (prompt tuning,
P-tuning) or to every layer's keys and values (prefix tuning). They work for sequence
classification on BERT-style encoders, not only causal LMs; the head trains and is saved with
the prompt. For token classification and question answering only prefix tuning fits: tokens
added to the input would get outputs of their own (`check_per_token_outputs`). Virtual tokens
take positions, so `task.max_length` plus `num_virtual_tokens` must fit the model's position
table (`ftcli.models.loading.fit_max_length`). Prefix tuning reaches the layers through the per-layer
key/value cache, so it needs a model whose forward takes one (`check_prefix_support`; under either
of its names, `ftcli.methods.prefix_cache`): BERT, RoBERTa, ELECTRA and decoders such as GPT-2 do;
DistilBERT, ALBERT, DeBERTa-v2, MPNet and ModernBERT do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional, TypeVar

from ftcli.config.schema import MethodConfig
from ftcli.errors import ModelError
from ftcli.methods.base import METHODS
from ftcli.methods.peft_adapter import PeftMethod, task_type
from ftcli.methods.prefix_cache import accept_past_key_values, prefix_receivers, takes_prefix

if TYPE_CHECKING:
    from pathlib import Path

    from peft import PeftConfig
    from transformers import PreTrainedModel

    from ftcli.methods.base import AdaptedModel


class PromptInit(str, Enum):
    random = "random"
    text = "text"  # start from the embeddings of `init_text`


class PromptEncoder(str, Enum):
    mlp = "mlp"
    lstm = "lstm"


@dataclass
class PromptTuningConfig(MethodConfig):
    name: str = "prompt_tuning"
    num_virtual_tokens: int = 20
    init: PromptInit = PromptInit.random
    init_text: Optional[str] = None

    def validate(self) -> list[str]:
        problems = _positive_tokens(self.num_virtual_tokens)
        if self.init is PromptInit.text and not self.init_text:
            problems.append("method.init=text needs method.init_text (e.g. 'Is this review positive or negative?')")
        return problems


@dataclass
class PTuningConfig(MethodConfig):
    name: str = "p_tuning"
    num_virtual_tokens: int = 20
    encoder: PromptEncoder = PromptEncoder.mlp  # reparameterises the virtual tokens while training
    encoder_hidden_size: int = 128

    def validate(self) -> list[str]:
        return _positive_tokens(self.num_virtual_tokens)


@dataclass
class PrefixTuningConfig(MethodConfig):
    name: str = "prefix_tuning"
    num_virtual_tokens: int = 20
    projection: bool = False  # reparameterise the prefix through an MLP (more stable, more parameters)
    projection_hidden_size: int = 128

    def validate(self) -> list[str]:
        return _positive_tokens(self.num_virtual_tokens)


def _positive_tokens(count: int) -> list[str]:
    return [] if count >= 1 else [f"method.num_virtual_tokens={count} must be at least 1"]


P = TypeVar("P", bound="PromptTuningConfig | PTuningConfig | PrefixTuningConfig")


class PromptMethod(PeftMethod[P]):
    mergeable = False  # virtual tokens are extra inputs, not a change to any weight (`merge` refuses)
    prompt_learning = True
    extends_input = True  # the virtual tokens join the input sequence (prefix tuning's do not)

    def apply(self, model: PreTrainedModel, cfg: P, head: list[str]) -> AdaptedModel:
        if self.extends_input:
            check_per_token_outputs(model, cfg.name)
        return super().apply(model, cfg, head)

    def virtual_tokens(self, cfg: P) -> int:
        """Counted for all three prompt methods, prefix tuning included."""
        return cfg.num_virtual_tokens


class PromptTuning(PromptMethod[PromptTuningConfig]):
    default_lr = 3.0e-2

    def peft_config(self, model: PreTrainedModel, cfg: PromptTuningConfig, head: list[str]) -> PeftConfig:
        import peft

        text = cfg.init is PromptInit.text
        return peft.PromptTuningConfig(
            task_type=task_type(model),
            num_virtual_tokens=cfg.num_virtual_tokens,
            prompt_tuning_init=peft.PromptTuningInit.TEXT if text else peft.PromptTuningInit.RANDOM,
            prompt_tuning_init_text=cfg.init_text if text else None,
            tokenizer_name_or_path=_tokenizer_path(model) if text else None,
            modules_to_save=head,
            **_input_sizes(model),
        )


class PTuning(PromptMethod[PTuningConfig]):
    default_lr = 1.0e-2

    def peft_config(self, model: PreTrainedModel, cfg: PTuningConfig, head: list[str]) -> PeftConfig:
        import peft

        return peft.PromptEncoderConfig(
            task_type=task_type(model),
            num_virtual_tokens=cfg.num_virtual_tokens,
            encoder_reparameterization_type=peft.PromptEncoderReparameterizationType[cfg.encoder.name.upper()],
            encoder_hidden_size=cfg.encoder_hidden_size,
            modules_to_save=head,
            **_input_sizes(model),
        )


class PrefixTuning(PromptMethod[PrefixTuningConfig]):
    default_lr = 1.0e-2
    extends_input = False

    def apply(self, model: PreTrainedModel, cfg: PrefixTuningConfig, head: list[str]) -> AdaptedModel:
        check_prefix_support(model)
        accept_past_key_values(model)
        return super().apply(model, cfg, head)

    def load(self, base: PreTrainedModel, directory: Path) -> AdaptedModel:
        accept_past_key_values(base)
        return super().load(base, directory)

    def peft_config(self, model: PreTrainedModel, cfg: PrefixTuningConfig, head: list[str]) -> PeftConfig:
        import peft

        return peft.PrefixTuningConfig(
            task_type=task_type(model),
            num_virtual_tokens=cfg.num_virtual_tokens,
            prefix_projection=cfg.projection,
            encoder_hidden_size=cfg.projection_hidden_size,
            modules_to_save=head,
        )


def _input_sizes(model: PreTrainedModel) -> dict[str, Any]:
    """The sizes PEFT needs for tokens prepended to the input, read from the model itself.

    PEFT looks them up under a few config key names and fails on configs that name them otherwise
    (DistilBERT: `dim`, `n_heads`); the virtual tokens join the input embeddings, so their width is
    the embeddings' width.
    """
    return dict(
        token_dim=model.get_input_embeddings().embedding_dim,
        num_layers=getattr(model.config, "num_hidden_layers", None),
        num_attention_heads=getattr(model.config, "num_attention_heads", None),
    )


def check_per_token_outputs(model: PreTrainedModel, name: str) -> None:
    """Fail before training when virtual input tokens would misalign a per-token head (`ner`, `qa`).

    PEFT prepends prompt-tuning and P-tuning tokens to the input, and its token-classification
    wrapper returns logits for them as well, so logits and labels no longer line up (PEFT stops
    at the first batch with a batch-size mismatch). Prefix tuning adds keys and values, not
    positions, and works.
    """
    per_token = {"TOKEN_CLS": ("tag tokens", "words"), "QUESTION_ANS": ("find answer spans", "tokens")}
    if task_type(model).value in per_token:
        what, unit = per_token[task_type(model).value]
        raise ModelError(
            f"method={name} cannot {what}: PEFT prepends its virtual tokens to the input and returns "
            f"outputs for them too, so the outputs no longer line up with the {unit}",
            hint="use method=prefix_tuning for a prompt method, or lora, ia3 or adapter",
        )


def check_prefix_support(model: PreTrainedModel) -> None:
    """Fail before training when PEFT could not hand this model a prefix.

    PEFT passes the prefix to the task model's forward or, when that does not take it, to its
    backbone's, as the per-layer key/value cache (`ftcli.methods.prefix_cache`). A model whose
    forwards take no cache would stop inside PEFT, at wrap time (DistilBERT) or at the first batch
    (ALBERT, DeBERTa-v2, MPNet, ModernBERT), with a message that names no alternative.
    """
    if takes_prefix(model):
        return
    model_type = model.config.model_type
    names = [f"{type(m).__name__}.forward" for m in prefix_receivers(model)]
    takes = f"neither {' nor '.join(names)} accepts one" if len(names) > 1 else f"{names[0]} does not accept one"
    raise ModelError(
        f"method=prefix_tuning cannot be used with this {model_type} model: PEFT hands the prefix to every "
        f"layer as its key/value cache (past_key_values), and {takes}",
        hint=f"methods that work with {model_type}: {', '.join(_prefix_alternatives(model))}; "
        "prompt_tuning and p_tuning learn virtual tokens on the input instead of on every layer",
    )


def _prefix_alternatives(model: PreTrainedModel) -> list[str]:
    """The parameter-efficient methods to use instead: the input-side prompts, then LoRA and IA3
    (plain where ftcli knows the architecture's default targets, else with targets to set)."""
    from ftcli.methods import ia3, lora

    names = ["prompt_tuning", "p_tuning"]
    for name, default_targets in (("lora", lora.default_targets), ("ia3", ia3.default_targets)):
        try:
            default_targets(model)
            names.append(name)
        except ModelError:
            names.append(f"{name} (with method.target_modules)")
    return names


def _tokenizer_path(model: PreTrainedModel) -> str:
    """Where PEFT can load the tokenizer that text initialisation needs."""
    from ftcli.models.sources import embedded_tokenizer_path

    return model.name_or_path or embedded_tokenizer_path()


METHODS.register("prompt_tuning", PromptTuningConfig)(PromptTuning())
METHODS.register("p_tuning", PTuningConfig)(PTuning())
METHODS.register("prefix_tuning", PrefixTuningConfig)(PrefixTuning())
