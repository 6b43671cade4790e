"""The three kinds of language model a label word can be scored with, told apart by a model's config.

A causal LM predicts the next token (GPT-2, Llama, Qwen); an encoder-decoder's decoder predicts
its output from what the encoder read (T5, BART); a masked LM predicts the token under its mask
token (BERT, RoBERTa, the embedded MiniLM). BERT-likes also have a causal-LM class, which is only
a left-to-right model when their config says `is_decoder`; read as encoders, they are masked LMs.

Importing this module imports no `transformers` (the config check looks the kinds up); the Auto
class that builds a model of each kind is `ftcli.models.label_word_auto`'s.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PretrainedConfig


class LanguageModel(str, Enum):
    causal = "causal"  # the word's log-likelihood after the prompt
    seq2seq = "seq2seq"  # the word's log-likelihood as the decoder's output for the prompt
    masked = "masked"  # the masked-LM head's logit of the word's (first) token at the mask


def language_model(config: PretrainedConfig) -> LanguageModel | None:
    """The kind of language model `transformers` has for a model of this config; None for none."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_encoder_decoder", False):
        return LanguageModel.seq2seq
    # only configs of models that can also run as decoders (BERT-likes) have an `is_decoder` field
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        return LanguageModel.masked
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return LanguageModel.causal
    return None
