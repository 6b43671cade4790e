"""`model.num_layers`: a pretrained encoder thinned to evenly spaced layers, whose weights it keeps."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from ftcli.config.schema import ModelConfig
from ftcli.errors import ModelError
from ftcli.models.layers import keep_layers, kept_layers
from ftcli.models.loading import build_model
from ftcli.models.tiny import tiny_config


def test_distilberts_choice_is_every_other_layer():
    assert kept_layers(12, 6) == [0, 2, 4, 6, 8, 10]
    assert kept_layers(6, 3) == [0, 2, 4] and kept_layers(12, 4) == [0, 3, 6, 9]
    assert kept_layers(5, 5) == [0, 1, 2, 3, 4] and kept_layers(2, 1) == [0]


@pytest.fixture(scope="module")
def four_layers(tmp_path_factory):
    """A 4-layer BERT saved as a pretrained folder, and its weights."""
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config("bert", num_hidden_layers=4))
    folder = tmp_path_factory.mktemp("bert4")
    model.save_pretrained(folder)
    return folder, model.state_dict()


def test_a_thinned_model_keeps_the_chosen_layers_weights(four_layers):
    folder, original = four_layers
    model = build_model(ModelConfig(str(folder), num_layers=2), AutoModelForSequenceClassification, ["a", "b"])
    assert model.config.num_hidden_layers == 2 and len(model.bert.encoder.layer) == 2
    kept = model.state_dict()
    for position, source in enumerate([0, 2]):
        prefix = f"bert.encoder.layer.{position}."
        names = [name for name in kept if name.startswith(prefix)]
        same = [torch.equal(kept[n], original[n.replace(prefix, f"bert.encoder.layer.{source}.")]) for n in names]
        assert names and all(same)
    outside = [n for n in kept if ".encoder.layer." not in n and not n.startswith("classifier.")]
    assert outside and all(torch.equal(kept[n], original[n]) for n in outside)  # embeddings and pooler untouched


def test_more_layers_than_the_model_has_are_refused(four_layers):
    folder, _ = four_layers
    with pytest.raises(ModelError, match="model.num_layers=5: this bert model has only 4 layers"):
        build_model(ModelConfig(str(folder), num_layers=5), AutoModelForSequenceClassification, ["a", "b"])


def test_models_that_are_not_bert_like_are_refused():
    gpt2 = AutoModelForCausalLM.from_config(tiny_config("gpt2"))
    with pytest.raises(ModelError, match="the layers of this gpt2 model cannot be thinned"):
        keep_layers(gpt2, 1)
    with pytest.raises(ModelError, match="warm-started encoder-decoder"):
        build_model(ModelConfig("warmstart:tiny:bert", num_layers=1), AutoModelForCausalLM, [])


def test_a_thinned_decoder_numbers_its_attention_layers_afresh():
    model = AutoModelForCausalLM.from_config(tiny_config("bert", num_hidden_layers=4, is_decoder=True))
    assert keep_layers(model, 2) == [0, 2]
    assert [layer.attention.self.layer_idx for layer in model.bert.encoder.layer] == [0, 1]
    assert model(input_ids=torch.tensor([[101, 7, 8]]), use_cache=True).logits.shape == (1, 3, model.config.vocab_size)
