"""Tests of ftcli.models.warmstart: the MiniLM-to-MiniLM encoder-decoder (`model=minilm2minilm`)."""

from __future__ import annotations

import pytest
import torch

from ftcli.config.schema import EMBEDDED_MODEL, ModelConfig
from ftcli.errors import ModelError
from ftcli.models.loading import build_model, build_tokenizer
from ftcli.models.sources import embedded_tokenizer_path
from ftcli.tasks import TASKS

WARMSTART = ModelConfig(name_or_path=f"warmstart:{EMBEDDED_MODEL}")
SEQ2SEQ = TASKS.get("summarization").impl.model_class()
# ftcli silences this EncoderDecoderModel notice for the process; pytest resets filters per test
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Version v4.12.0 introduces:FutureWarning")]


def build():
    return build_model(WARMSTART, SEQ2SEQ, []).eval()


@pytest.fixture(scope="module")
def model():
    return build()


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(WARMSTART)


def cross_attention(model) -> dict[str, torch.Tensor]:
    return {name: p for name, p in model.decoder.named_parameters() if ".crossattention." in name}


def test_the_option_is_the_embedded_minilm_warm_started(config_dir):
    from omegaconf import OmegaConf

    assert OmegaConf.load(config_dir / "model" / "minilm2minilm.yaml").name_or_path == WARMSTART.name_or_path


def test_both_halves_start_from_minilm_and_only_cross_attention_is_new(model):
    from transformers import AutoModel

    minilm = AutoModel.from_pretrained(embedded_tokenizer_path()).state_dict()
    encoder = model.encoder.state_dict()
    assert encoder.keys() == minilm.keys()
    assert all(torch.equal(encoder[k], minilm[k]) for k in minilm)
    decoder = model.decoder.bert.state_dict()
    shared = [k for k in minilm if k in decoder]
    assert shared and all(torch.equal(decoder[k], minilm[k]) for k in shared)
    assert model.decoder.config.is_decoder and model.decoder.config.add_cross_attention
    assert len({name.split(".crossattention.")[0] for name in cross_attention(model)}) == 6  # one per layer
    # the output layer is the decoder's word embeddings
    assert model.get_output_embeddings().weight is model.decoder.bert.embeddings.word_embeddings.weight


def test_new_weights_are_the_same_on_every_build_and_leave_the_global_rng_alone(model):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    again = build()
    assert torch.equal(torch.rand(3), expected)
    first, second = cross_attention(model), cross_attention(again)
    assert first and first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    # the prediction head's transform is new too (MiniLM has no masked-LM head): everything matches
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_special_tokens_are_minilm_s_and_generation_runs(model, tokenizer):
    assert tokenizer.name_or_path == build_tokenizer(ModelConfig(name_or_path=EMBEDDED_MODEL)).name_or_path
    assert model.config.decoder_start_token_id == model.generation_config.decoder_start_token_id == tokenizer.cls_token_id
    assert model.config.eos_token_id == model.generation_config.eos_token_id == tokenizer.sep_token_id
    assert model.config.pad_token_id == model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert model.config.vocab_size == tokenizer.vocab_size
    inputs = tokenizer(["The council opened a bridge.", "Rain."], padding=True, return_tensors="pt",
                       return_token_type_ids=False)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=4)
    assert out.shape[0] == 2 and 1 < out.shape[1] <= 5 and (out[:, 0] == tokenizer.cls_token_id).all()
    labels = tokenizer(text_target=["A bridge.", "Rain."], padding=True, return_tensors="pt")["input_ids"]
    labels[labels == tokenizer.pad_token_id] = -100  # as the seq2seq collator pads them
    with torch.inference_mode():
        assert torch.isfinite(model(**inputs, labels=labels).loss)


def test_lora_default_targets_cover_self_and_cross_attention(model):
    from ftcli.methods.lora import default_targets
    from ftcli.methods.peft_adapter import task_type

    assert default_targets(model) == ["query", "value"]
    assert task_type(model).value == "SEQ_2_SEQ_LM"


@pytest.mark.parametrize("name", ["warmstart:", "warmstart:tiny:bert", "warmstart:warmstart:x"])
def test_a_reference_without_a_pretrained_encoder_is_refused(name):
    with pytest.raises(ModelError, match="pretrained encoder"):
        build_model(ModelConfig(name_or_path=name), SEQ2SEQ, [])


def test_a_classification_task_is_refused():
    from transformers import AutoModelForSequenceClassification

    with pytest.raises(ModelError, match="encoder-decoder") as info:
        build_model(WARMSTART, AutoModelForSequenceClassification, ["neg", "pos"])
    assert "task=summarization" in info.value.hint
