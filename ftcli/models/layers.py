"""A pretrained encoder with fewer layers (`model.num_layers`): the start of a smaller student.

DistilBERT started its 6-layer student from one layer in two of BERT-base (layers 0, 2, ..., 10);
keeping k of L layers here keeps layer ⌊i·L/k⌋ for i = 0 … k−1, which is that choice for 12 → 6
and spreads the kept layers evenly for any other k. Embeddings, pooler and head stay as they are.
The model's config then says k layers, so a saved model folder reloads with k, and an adapter run
rebuilds its base with the same `model.num_layers` from its config.yaml.

BERT-like encoders keep their layers in `encoder.layer` (BERT, RoBERTa, XLM-R, ELECTRA, MiniLM,
MPNet, DeBERTa) and DistilBERT in `transformer.layer`; other architectures are refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftcli.errors import ModelError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

# where the base model holds its layer stack, and the config setting that counts it
STACKS = (("encoder.layer", "num_hidden_layers"), ("transformer.layer", "n_layers"))


def kept_layers(total: int, keep: int) -> list[int]:
    """The indices of the `keep` layers, of `total`, that a thinned model keeps: ⌊i·total/keep⌋."""
    return [i * total // keep for i in range(keep)]


def keep_layers(model: PreTrainedModel, keep: int) -> list[int]:
    """Thin `model` in place to `keep` of its layers (`kept_layers`); returns the indices kept.

    Raises:
        ModelError: for a model whose layers are not a BERT-like or DistilBERT stack, or that has
            fewer than `keep` layers.
    """
    from torch import nn

    model_type = model.config.model_type
    for path, setting in STACKS:
        try:
            layers = model.base_model.get_submodule(path)
        except AttributeError:
            continue
        # the config key counts the stack only in the architectures that name it so
        if isinstance(layers, nn.ModuleList) and getattr(model.config, setting, None) == len(layers):
            break
    else:
        raise ModelError(
            f"model.num_layers={keep}: the layers of this {model_type} model cannot be thinned; only BERT-like "
            "encoders (bert, roberta, electra, MiniLM, ...) and distilbert can",
            hint="drop model.num_layers, or start from a BERT-like encoder such as model=minilm",
        )
    if keep > len(layers):
        raise ModelError(
            f"model.num_layers={keep}: this {model_type} model has only {len(layers)} layers",
            hint=f"set model.num_layers to at most {len(layers)}",
        )
    kept = kept_layers(len(layers), keep)
    thinned = [layers[i] for i in kept]
    for position, layer in enumerate(thinned):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):  # attention indexes a generation cache by its layer's position
                setattr(module, "layer_idx", position)
    model.base_model.get_submodule(path.rpartition(".")[0]).layer = nn.ModuleList(thinned)
    setattr(model.config, setting, keep)
    return kept
