"""`AutoModelForLabelWords`: the Auto class that builds a language model of its own kind for any config.

`task=prompt_based` scores label words with a causal LM, an encoder-decoder or a masked LM, each
with the head it was pretrained with. Like every `transformers` Auto class, this one builds the
model a config calls for (`from_config`, `from_pretrained`), of the kind
`ftcli.models.language_models.language_model` names: what `AutoModelForCausalLM`,
`AutoModelForSeq2SeqLM` or `AutoModelForMaskedLM` builds.

A masked LM's checkpoint may hold no masked-LM head. The embedded MiniLM is a sentence encoder,
saved without one; `transformers` reports the head's weights as missing and draws them at random.
Its output layer is tied to the input embeddings, though, so a label word's logit is still the
word's input embedding times the head's output, plus the head's bias. Rather than drawn, the
missing weights start where they add the least: the head's square projection as the identity, its
layer norm as 1 and 0, its biases at 0 (for BERT the head's output is then the layer-normed GELU
of the hidden state at the mask), and a log line says the head is new. Nothing random is drawn,
so a run that saves only an adapter rebuilds exactly the base model it trained on, and a saved
model is a plain masked LM whose own logits are the scores ftcli trained, wherever it is loaded.
Refusing such checkpoints instead would leave the default model without this task. A missing
weight that cannot start that way (an output layer not tied to the input embeddings) is refused
rather than left random.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import takewhile
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSeq2SeqLM
from transformers.models.auto.auto_factory import _BaseAutoModelClass, _LazyAutoMapping
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
)

from ftcli import ui
from ftcli.errors import ModelError
from ftcli.models.language_models import LanguageModel, language_model

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

    from ftcli.models.sources import ModelClass

AUTO_CLASSES: dict[LanguageModel, ModelClass] = {
    LanguageModel.causal: AutoModelForCausalLM,
    LanguageModel.seq2seq: AutoModelForSeq2SeqLM,
    LanguageModel.masked: AutoModelForMaskedLM,
}


def _class_names() -> OrderedDict[str, str]:
    """Model type -> the class of its kind, for the config classes this Auto class takes (a BERT-like
    read as an encoder: its masked-LM class)."""
    names: OrderedDict[str, str] = OrderedDict(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    names.update(MODEL_FOR_MASKED_LM_MAPPING_NAMES)
    names.update(MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES)
    return names


class AutoModelForLabelWords(_BaseAutoModelClass):
    """A causal LM, an encoder-decoder or a masked LM, whichever the config is, with its own head."""

    # transformers declares the base class's mapping None; every Auto class sets its own
    _model_mapping = _LazyAutoMapping(CONFIG_MAPPING_NAMES, _class_names())  # type: ignore[assignment]

    @classmethod
    def auto_class(cls, config: PretrainedConfig) -> ModelClass:
        """The `transformers` Auto class that builds this config's language model."""
        kind = language_model(config)
        if kind is None:
            raise ModelError(
                f"this {config.model_type} model has no language-model head to score label words with",
                hint="use a causal LM, an encoder-decoder or a masked LM (model=minilm, tiny_gpt2, tiny_t5)",
            )
        return AUTO_CLASSES[kind]

    @classmethod
    def from_config(cls, config: Any, **kwargs: Any) -> Any:
        return cls.auto_class(config).from_config(config, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Any, *model_args: Any, **kwargs: Any) -> Any:
        """The pretrained model, with a masked-LM head its checkpoint lacks started as the module says."""
        config = AutoConfig.from_pretrained(
            pretrained_model_name_or_path, revision=kwargs.get("revision"),
            trust_remote_code=kwargs.get("trust_remote_code", False),
        )
        auto = cls.auto_class(config)
        model, info = auto.from_pretrained(
            pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
        )
        if auto is AutoModelForMaskedLM:
            start_missing_head(model, info["missing_keys"], str(pretrained_model_name_or_path))
        return model


def loading_class(model_class: ModelClass, config: PretrainedConfig) -> ModelClass:
    """The `transformers` Auto class that loads a model `model_class` built for `config` back: itself,
    or the one `AutoModelForLabelWords` built it with."""
    return model_class.auto_class(config) if issubclass(model_class, AutoModelForLabelWords) else model_class


def start_missing_head(model: PreTrainedModel, missing: set[str] | list[str], source: str) -> None:
    """Start the head weights the checkpoint lacks without a random draw, and say so.

    Raises:
        ModelError: for a missing weight that has no such start (an untied output layer).
    """
    backbone = model.base_model_prefix + "."
    parameters = dict(model.named_parameters(remove_duplicate=False))
    new = sorted(key for key in missing if key in parameters and not key.startswith(backbone))
    if not new:
        return
    with torch.no_grad():
        for key in new:
            owner, _, kind = key.rpartition(".")
            _start(model.get_submodule(owner), kind, parameters[key], key, source)
    owners = [key.rpartition(".")[0].split(".") for key in new]
    shared = ".".join(part[0] for part in takewhile(lambda part: len(set(part)) == 1, zip(*owners)))
    ui.info(
        f"{source} holds no masked-LM head (its {len(new)} weights under {shared or 'the head'} are new): label "
        "words are scored by a new head tied to the input embeddings, started as the identity with no bias"
    )


def _start(module: nn.Module, kind: str, weight: nn.Parameter, key: str, source: str) -> None:
    if kind == "bias":
        weight.zero_()
    elif isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("LayerNorm"):
        weight.fill_(1.0)
    elif isinstance(module, nn.Linear) and module.in_features == module.out_features:
        weight.copy_(torch.eye(module.in_features))
    else:
        raise ModelError(
            f"{source} holds no masked-LM head, and its {key} ({tuple(weight.shape)}) cannot start from the "
            "encoder without a random draw: its output layer is not tied to its input embeddings",
            hint="use a checkpoint that holds its masked-LM head, or a causal LM",
        )
