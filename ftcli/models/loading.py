"""Building models and tokenizers: from the hub, a local folder, an installed package or a tiny config.

`model.name_or_path` accepts a Hugging Face hub id, a local folder, `package:<module>/<dir>` for
weights shipped inside an installed Python package (the embedded MiniLM), or `tiny:<arch>` for a
small random model. Loading never reaches the network for anything but a hub id that is not on
disk, and a failure says which id and how to fix it.

`warmstart:<encoder>`, where `<encoder>` is any of the above but `tiny:`, builds a seq2seq
encoder-decoder whose encoder and decoder both start from that encoder-only checkpoint, with new
cross-attention ("bert2bert"; `model=minilm2minilm` warm-starts from the embedded MiniLM). Its
tokenizer is the encoder's; `ftcli.models.warmstart` builds it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftcli.config.schema import ModelConfig
from ftcli.errors import ModelError
from ftcli.models.sources import TINY_PREFIX, embedded_tokenizer_path, loading, resolve

if TYPE_CHECKING:
    from torch import nn
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from ftcli.models.sources import ModelClass

log = logging.getLogger(__name__)


def with_absolute_path(cfg: ModelConfig) -> ModelConfig:
    """A local model folder as an absolute path, so a saved config works from any directory."""
    from dataclasses import replace

    folder = Path(cfg.name_or_path).expanduser()
    if folder.is_dir():
        return replace(cfg, name_or_path=str(folder.resolve()))
    return cfg


def build_model(cfg: ModelConfig, model_class: ModelClass, labels: list[str], **config: Any) -> PreTrainedModel:
    """A model with a fresh task head for `labels`, in float32; `config` sets more model-config fields.
    With `model.num_layers`, only that many of its layers, evenly spaced (`ftcli.models.layers`)."""
    from ftcli.models import warmstart
    from ftcli.models.layers import keep_layers

    if warmstart.is_warmstart(cfg.name_or_path):  # an encoder-decoder warm-started from an encoder
        if cfg.num_layers is not None:
            raise ModelError(f"model.num_layers={cfg.num_layers}: a warm-started encoder-decoder "
                             f"({cfg.name_or_path}) cannot be thinned", hint="drop model.num_layers")
        return warmstart.build_model(cfg, model_class, labels, **config)
    model = _built(cfg, model_class, labels, **config)
    if cfg.num_layers is not None:
        keep_layers(model, cfg.num_layers)
    return model


def _built(cfg: ModelConfig, model_class: ModelClass, labels: list[str], **config: Any) -> PreTrainedModel:
    import torch

    from ftcli.models import attention_backend, quantization

    attention = attention_backend.loading_kwargs(cfg)
    label_args = dict(
        num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}, **config
    )
    if cfg.name_or_path.startswith(TINY_PREFIX):
        from ftcli.models.tiny import TINY_SEED, tiny_config

        arch = cfg.name_or_path[len(TINY_PREFIX):]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            if cfg.quantized_bits is not None:
                raise ModelError(f"model.load_in_{cfg.quantized_bits}bit=true: a tiny model is built from config "
                                 "and has no weights to quantise", hint="drop it, or name a hub model or folder")
            return _with_attention(lambda: model_class.from_config(tiny_config(arch, **label_args), **attention), cfg)
    quantized = quantization.loading_kwargs(cfg)
    with loading(cfg):
        return _with_attention(lambda: model_class.from_pretrained(
            resolve(cfg.name_or_path),
            revision=cfg.revision,
            trust_remote_code=cfg.trust_remote_code,
            dtype=torch.float32,
            **quantized,
            **attention,
            **label_args,
        ), cfg)


def _with_attention(build: Any, cfg: ModelConfig) -> PreTrainedModel:
    """`build()`, with a model that has no kernel of the attention implementation named refused by name."""
    try:
        model: PreTrainedModel = build()
    except (ValueError, ImportError) as exc:
        if not any(word in str(exc) for word in ("attn_implementation", "does not support", "FlashAttention")):
            raise
        raise ModelError(f"model.attn_implementation={cfg.attn_implementation.value}: {exc}",
                         hint="use model.attn_implementation=auto (or eager, which every model has)") from exc
    return model


def build_tokenizer(cfg: ModelConfig) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    from ftcli.models import warmstart

    if warmstart.is_warmstart(cfg.name_or_path):  # the encoder's tokenizer
        cfg = warmstart.encoder_model_config(cfg)
    path = embedded_tokenizer_path() if cfg.name_or_path.startswith(TINY_PREFIX) else resolve(cfg.name_or_path)
    with loading(cfg):
        tokenizer = AutoTokenizer.from_pretrained(path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    return prepare_tokenizer(tokenizer)


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Give tokenizers without a padding token (GPT-2 and most causal LMs) their EOS as padding."""
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def sync_pad_token(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id


def load_config(cfg: ModelConfig) -> PretrainedConfig:
    """The model's `transformers` config, without its weights (tiny models' from their recipe,
    warm-started ones' as the encoder-decoder config they are built with)."""
    from transformers import AutoConfig

    from ftcli.models import warmstart

    if warmstart.is_warmstart(cfg.name_or_path):
        return warmstart.load_config(cfg)
    if cfg.name_or_path.startswith(TINY_PREFIX):
        from ftcli.models.tiny import tiny_config

        return tiny_config(cfg.name_or_path[len(TINY_PREFIX):])
    with loading(cfg):
        return AutoConfig.from_pretrained(
            resolve(cfg.name_or_path), revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
        )


# The heads a task asks for (by its Auto class), what carries one, and the models that do.
HEADS: dict[str, tuple[str, str]] = {
    "AutoModelForSeq2SeqLM": (
        "an encoder-decoder",
        "model=minilm2minilm or model=tiny_t5 (offline), or a hub encoder-decoder such as google-t5/t5-small, "
        "facebook/bart-base or Helsinki-NLP/opus-mt-en-fr",
    ),
    "AutoModelForCausalLM": (
        "a causal language model",
        "model=minilm, tiny_gpt2 or tiny_llama (offline), or a hub causal LM such as Qwen/Qwen2.5-0.5B or gpt2",
    ),
    "AutoModelForSequenceClassification": (
        "a model with a sequence-classification head",
        "model=minilm (offline), or a hub encoder such as distilbert/distilbert-base-uncased",
    ),
    "AutoModelForTokenClassification": (
        "a model with a token-classification head",
        "model=minilm (offline), or a hub encoder such as distilbert/distilbert-base-uncased",
    ),
    "AutoModelForQuestionAnswering": (
        "a model with a span-prediction head",
        "model=minilm (offline), or a hub encoder such as distilbert/distilbert-base-uncased",
    ),
    "AutoModelForLabelWords": (
        "a language model (causal, encoder-decoder or masked)",
        "model=minilm, tiny_gpt2, tiny_llama, tiny_t5 or tiny_bert (offline), or a hub model such as gpt2, "
        "google/flan-t5-base or FacebookAI/roberta-base",
    ),
}


def architecture(config: PretrainedConfig) -> str:
    """What the model is, as a phrase: "an encoder-decoder", "encoder-only" or "a decoder".

    Only configs of models that can also run as a decoder (BERT-likes) have an `is_decoder` field;
    a model with no causal-LM class is an encoder too (DistilBERT).
    """
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if getattr(config, "is_encoder_decoder", False):
        return "an encoder-decoder"
    if getattr(config, "is_decoder", False):
        return "a decoder"
    if hasattr(config, "is_decoder") or config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "encoder-only"
    return "a decoder"


def head_need(model_class: ModelClass) -> str:
    """What a model must be to carry `model_class`'s head: "an encoder-decoder", ..."""
    return _head(model_class)[0]


def _head(model_class: ModelClass) -> tuple[str, str]:
    """`HEADS`' entry for `model_class`, or a plain one for an Auto class it does not list."""
    return HEADS.get(
        model_class.__name__, (f"a model that {model_class.__name__} loads", "a model of another architecture")
    )


def can_carry(config: PretrainedConfig, model_class: ModelClass) -> bool:
    """Whether `model_class` has a model for this config (or the model's own code provides one)."""
    mapping = getattr(model_class, "_model_mapping", {})
    return type(config) in mapping or model_class.__name__ in (getattr(config, "auto_map", None) or {})


def check_head(cfg: ModelConfig, config: PretrainedConfig, model_class: ModelClass, task_name: str) -> None:
    """Refuse, before any weights load, a model whose architecture has no `model_class` head.

    `config` is the model's (`load_config`). `transformers` would fail later with "Unrecognized
    configuration class", which names neither the setting nor a model that works.
    """
    from ftcli.models import warmstart

    if warmstart.is_warmstart(cfg.name_or_path):  # a more specific message of its own
        warmstart.check_model_class(cfg, model_class)
        return
    if can_carry(config, model_class):
        return
    need, models = _head(model_class)
    raise ModelError(
        f"model.name_or_path={cfg.name_or_path!r}: task={task_name} needs {need}, and this "
        f"{config.model_type} model is {architecture(config)} ({model_class.__name__} has no class for it)",
        hint=f"use {models}",
    )


POSITION_TABLES = ("position_embeddings", "wpe", "embed_positions")


def position_limit(model: nn.Module) -> int | None:
    """The most tokens a model with a learned position table takes; None when positions are computed
    (rotary, relative, ALiBi) and any length runs. RoBERTa-style tables reserve the first rows for
    padding, BART-style ones an `offset`."""
    from torch import nn

    limits = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) and name.rsplit(".", 1)[-1] in POSITION_TABLES:
            reserved = getattr(module, "offset", 0) + (module.padding_idx + 1 if module.padding_idx is not None else 0)
            limits.append(module.num_embeddings - reserved)
    return min(limits) if limits else None


def fit_max_length(model: PreTrainedModel, max_length: int, default: int, virtual_tokens: int = 0) -> int:
    """`task.max_length`, checked against the model's position table (virtual tokens take positions too).

    Past the table, the model fails on the first long input, hours in; so a length set beyond it is
    refused now. The task's default is only a starting point, so it is lowered to fit, and said.
    """
    from ftcli import ui
    from ftcli.errors import ConfigError

    limit = position_limit(model)
    if limit is None or max_length + virtual_tokens <= limit:
        return max_length
    room = limit - virtual_tokens
    plus = f" plus method.num_virtual_tokens={virtual_tokens}" if virtual_tokens else ""
    if max_length != default or room < 1:
        raise ConfigError(
            f"task.max_length={max_length}{plus} exceeds the {limit} positions of this {model.config.model_type} model",
            hint=f"set task.max_length={room} or fewer" + (", or fewer virtual tokens" if virtual_tokens else ""),
        )
    ui.info(f"task.max_length: {room} (the default {default}{plus} exceeds the model's {limit} positions)")
    return room


def enable_gradient_checkpointing(model: Any) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them.

    The non-reentrant form needs no input that requires grad, so it works under frozen
    embeddings (LoRA, adapters, prompts), and it replays the random state, so dropout and thus
    the trained weights are the same as without it.
    """
    from ftcli.errors import ConfigError

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ConfigError(
            f"trainer.gradient_checkpointing=true: this {base.config.model_type} model does not support it",
            hint="drop it, and save memory with a smaller trainer.batch_size and trainer.grad_accum_steps",
        )
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
