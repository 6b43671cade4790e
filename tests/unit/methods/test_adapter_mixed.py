"""Bottleneck adapters, mixed methods, LoRA's variants and ftcli's adapter format on a tiny BERT."""

from __future__ import annotations

import json

import pytest
import torch

from ftcli.config.schema import ModelConfig, TrainerConfig
from ftcli.engine.optim import build_optimizer
from ftcli.errors import ModelError
from ftcli.methods import METHODS, count_parameters
from ftcli.methods.adapter import AdapterConfig, NonLinearity, Placement
from ftcli.methods.lora import LoraConfig
from ftcli.methods.mixed import MixedConfig
from ftcli.methods.native import CONFIG_FILE, WEIGHTS_FILE, load_adapter
from ftcli.methods.prompt import PrefixTuningConfig
from ftcli.models.loading import build_model
from ftcli.tasks import TASKS

LABELS = ["negative", "positive"]
HIDDEN, LAYERS = 32, 2
HEAD = HIDDEN * len(LABELS) + len(LABELS)


def bottleneck(width: int) -> int:
    """Parameters of one adapter: down (HIDDEN -> width, with bias) and up (width -> HIDDEN, with bias)."""
    return HIDDEN * width + width + width * HIDDEN + HIDDEN


def fresh_bert():
    return build_model(ModelConfig(name_or_path="tiny:bert"), TASKS.get("sentiment").impl.model_class(), LABELS).eval()


def apply(name, cfg, model):
    return METHODS.get(name).impl.apply(model, cfg, ["classifier"])


def logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def perturb(model):
    """Random values in every trainable tensor, so a reload that drops one is caught."""
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * 0.3)
    return model


@pytest.mark.parametrize(("placement", "per_layer"), [(Placement.houlsby, 2), (Placement.pfeiffer, 1)])
@pytest.mark.parametrize("reduction", [4, 16])
def test_adapter_count_matches_closed_form(tiny_bert, placement, per_layer, reduction):
    model = apply("adapter", AdapterConfig(placement=placement, reduction_factor=reduction), tiny_bert)
    counts = count_parameters(model, ["classifier"])
    assert counts.trainable_without_head == LAYERS * per_layer * bottleneck(HIDDEN // reduction)
    assert counts.trainable == counts.trainable_without_head + HEAD
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(".adapter." in n or n.startswith("classifier.") for n in trainable)


def test_adapter_sits_after_the_intended_projections(tiny_bert):
    houlsby = apply("adapter", AdapterConfig(), tiny_bert)
    wrapped = sorted(n.removesuffix(".adapter") for n, _ in houlsby.named_modules() if n.endswith(".adapter"))
    assert wrapped == [f"bert.encoder.layer.{i}.{part}" for i in range(LAYERS)
                       for part in ("attention.output.dense", "output.dense")]
    pfeiffer = apply("adapter", AdapterConfig(placement=Placement.pfeiffer), fresh_bert())
    assert sorted(n for n, _ in pfeiffer.named_modules() if n.endswith(".adapter")) == [
        f"bert.encoder.layer.{i}.output.dense.adapter" for i in range(LAYERS)
    ]


@pytest.mark.parametrize("activation", list(NonLinearity))
def test_adapter_is_identity_at_init(tiny_bert, batch, activation):
    before = logits(tiny_bert, batch)
    after = logits(apply("adapter", AdapterConfig(non_linearity=activation), tiny_bert), batch)
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_adapter_changes_the_output_once_trained(tiny_bert, batch):
    before = logits(tiny_bert, batch)
    model = apply("adapter", AdapterConfig(), tiny_bert)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".adapter.up." in name:
                param.normal_(0, 0.5)
    assert (logits(model, batch) - before).abs().max() > 1e-3


def test_adapter_freeze_bottom_layers_skips_them(tiny_bert):
    model = apply("adapter", AdapterConfig(freeze_bottom_layers=1), tiny_bert)
    adapters = [n for n, _ in model.named_modules() if n.endswith(".adapter")]
    assert adapters and all(n.startswith("bert.encoder.layer.1.") for n in adapters)
    with pytest.raises(ModelError, match="leaves no layer"):
        apply("adapter", AdapterConfig(freeze_bottom_layers=2), fresh_bert())


def test_adapter_unknown_target_lists_the_linear_layers(tiny_bert):
    with pytest.raises(ModelError, match=r"matched no module.*dense.*query"):
        apply("adapter", AdapterConfig(target_modules=["o_proj"]), tiny_bert)


def test_adapter_config_rejects_bad_values():
    problems = AdapterConfig(reduction_factor=0, dropout=1.0, target_modules=[], freeze_bottom_layers=-1).validate()
    assert len(problems) == 4


def test_lora_freeze_bottom_layers_adapts_only_the_top(tiny_bert):
    model = apply("lora", LoraConfig(freeze_bottom_layers=1), tiny_bert)
    adapted = {n.split(".layer.")[1].split(".")[0] for n, _ in model.named_parameters() if "lora_A" in n}
    assert adapted == {"1"}
    with pytest.raises(ModelError, match="leaves no layer"):
        apply("lora", LoraConfig(freeze_bottom_layers=2), fresh_bert())


@pytest.mark.parametrize("targets", ["all-linear", ["all-linear"]])
def test_lora_all_linear_as_a_string_or_a_list(tiny_bert, targets):
    model = apply("lora", LoraConfig(rank=2, target_modules=targets), tiny_bert)
    wrapped = {n.rsplit(".lora_A", 1)[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if ".lora_A" in n}
    assert wrapped == {"query", "key", "value", "dense"}


def test_lora_single_target_string_is_one_name(tiny_bert):
    model = apply("lora", LoraConfig(rank=2, target_modules="key"), tiny_bert)
    assert {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if ".lora_A" in n} == {"key"}


def test_lora_target_modules_of_the_wrong_type_is_a_config_problem():
    assert LoraConfig(target_modules=5).validate() == [
        "method.target_modules=5 must be null, all-linear or a list of layer names"
    ]


def test_loraplus_gives_b_a_higher_learning_rate(tiny_bert):
    cfg = LoraConfig(loraplus_lr_ratio=16)
    model = apply("lora", cfg, tiny_bert)
    optimizer = build_optimizer(model, TrainerConfig(weight_decay=0.01), 1e-3, METHODS.get("lora").impl.lr_scale(cfg))
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert rate[id(param)] == pytest.approx(1.6e-2 if "lora_B" in name else 1e-3), name
            assert decay[id(param)] == (0.0 if param.ndim < 2 else 0.01), name


def test_plain_lora_keeps_one_learning_rate(tiny_bert):
    cfg = LoraConfig()
    model = apply("lora", cfg, tiny_bert)
    assert METHODS.get("lora").impl.lr_scale(cfg) is None
    optimizer = build_optimizer(model, TrainerConfig(), 1e-3, None)
    assert {g["lr"] for g in optimizer.param_groups} == {1e-3}


def test_mixed_trains_the_union_of_its_parts(tiny_bert):
    cfg = MixedConfig(components=["lora", "adapter"], lora=LoraConfig(rank=4),
                      adapter=AdapterConfig(placement=Placement.pfeiffer, reduction_factor=8))
    model = apply("mixed", cfg, tiny_bert)
    counts = count_parameters(model, ["classifier"])
    lora = LAYERS * 2 * 4 * (HIDDEN + HIDDEN)
    assert counts.trainable_without_head == lora + LAYERS * bottleneck(HIDDEN // 8)
    assert counts.trainable == counts.trainable_without_head + HEAD
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or ".adapter." in n or n.startswith("classifier.") for n in trainable)


def test_mixed_lora_and_adapter_is_identity_at_init(tiny_bert, batch):
    before = logits(tiny_bert, batch)
    after = logits(apply("mixed", MixedConfig(components=["lora", "adapter"]), tiny_bert), batch)
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_mixed_adapter_wraps_a_lora_adapted_projection(tiny_bert, batch):
    """LoRA on every linear layer, then adapters after the output projections: both apply there."""
    cfg = MixedConfig(components=["lora", "adapter"], lora=LoraConfig(rank=2, target_modules="all-linear"))
    model = apply("mixed", cfg, tiny_bert)
    dense = model.bert.encoder.layer[0].output.dense
    assert type(dense).__name__ == "WithBottleneck" and hasattr(dense.base_layer, "lora_A")
    assert not any(".adapter.down.lora_A" in n for n, _ in model.named_parameters())


def test_mixed_prefix_and_lora_trains_both(tiny_bert):
    cfg = MixedConfig(components=["lora", "prefix_tuning"], prefix_tuning=PrefixTuningConfig(num_virtual_tokens=5))
    model = apply("mixed", cfg, tiny_bert)
    counts = count_parameters(model, ["classifier"])
    prefix = 5 * LAYERS * 2 * HIDDEN  # one key and one value vector per token and layer
    assert counts.trainable_without_head == LAYERS * 2 * 8 * (HIDDEN + HIDDEN) + prefix
    assert counts.trainable == counts.trainable_without_head + HEAD
    assert METHODS.get("mixed").impl.virtual_tokens(cfg) == 5


@pytest.mark.parametrize(("components", "message"), [
    (["lora"], "needs at least two"),
    ([], "needs at least two"),
    (["lora", "adaptr"], "did you mean 'adapter'"),
    (["lora", "prefix_tuning", "prompt_tuning"], "one prompt-learning method per model"),
])
def test_mixed_rejects_bad_combinations(components, message):
    problems = MixedConfig(components=components).validate()
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize(("name", "cfg"), [
    ("adapter", AdapterConfig()),
    ("adapter", AdapterConfig(placement=Placement.pfeiffer, non_linearity=NonLinearity.gelu)),
    ("mixed", MixedConfig(components=["lora", "adapter"])),
    ("mixed", MixedConfig(components=["lora", "prefix_tuning"])),
    ("mixed", MixedConfig(components=["adapter", "prompt_tuning"])),
])
def test_native_save_then_load_gives_identical_predictions(tmp_path, batch, name, cfg):
    model = perturb(apply(name, cfg, fresh_bert())).eval()
    expected = logits(model, batch)
    METHODS.get(name).impl.save(model, tmp_path, cfg)
    document = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert document["method"] == name and document["format"] == 1
    reloaded = load_adapter(fresh_bert(), tmp_path).eval()
    torch.testing.assert_close(logits(reloaded, batch), expected, rtol=0, atol=0)


def test_native_load_refuses_a_folder_that_does_not_fit(tmp_path):
    cfg = AdapterConfig()
    METHODS.get("adapter").impl.save(apply("adapter", cfg, fresh_bert()), tmp_path, cfg)
    document = json.loads((tmp_path / CONFIG_FILE).read_text())
    document["config"]["placement"] = "pfeiffer"  # fewer adapters than the weights hold
    (tmp_path / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.raises(ModelError, match="does not fit.*unexpected.*attention"):
        load_adapter(fresh_bert(), tmp_path)
    assert (tmp_path / WEIGHTS_FILE).is_file()
