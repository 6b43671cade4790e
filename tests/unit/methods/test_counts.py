"""Trainable-parameter counts of every method on tiny BERT and tiny GPT-2, against closed forms.

Each expected count is written from the model's config (hidden size, layers, feed-forward width,
labels, vocabulary and positions), never by counting the model, so a method that trains one
module too many or too few, or an architecture default that misses a layer, shows as a number.
The names of the trainable parameters are checked too: exactly the intended ones require grad.

The two architectures share the per-layer totals but not the layout: BERT has separate query,
key and value `nn.Linear`s, a pooler and a classifier with a bias; GPT-2 has one fused `c_attn`
`Conv1D` (weights stored in x out), a final `ln_f` and a `score` head without a bias.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from ftcli.methods import METHODS, count_parameters, head_modules
from ftcli.methods.bitfit import BitFitConfig
from ftcli.methods.freeze import FreezeConfig
from ftcli.methods.full import FullConfig
from ftcli.methods.ia3 import IA3Config
from ftcli.methods.ln_tuning import LNTuningConfig
from ftcli.methods.lora import LoraConfig
from ftcli.methods.prompt import PrefixTuningConfig, PromptEncoder, PromptTuningConfig, PTuningConfig

VIRTUAL = 5  # virtual tokens of the prompt methods
ENCODER = 24  # hidden width of the P-tuning MLP and the prefix projection (not 128: 2 x layers x hidden is 128)
RANK = 4


@dataclass(frozen=True)
class Sizes:
    """What the closed forms are written in, read from a model's config."""

    arch: str
    hidden: int
    layers: int
    intermediate: int  # feed-forward width
    heads: int
    labels: int
    vocab: int
    positions: int
    token_types: int  # BERT's segment embeddings; 0 for GPT-2


def sizes_of(config) -> Sizes:
    if config.model_type == "gpt2":
        return Sizes(
            "gpt2", config.n_embd, config.n_layer, config.n_inner or 4 * config.n_embd, config.n_head,
            config.num_labels, config.vocab_size, config.n_positions, 0,
        )
    return Sizes(
        "bert", config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.num_attention_heads,
        config.num_labels, config.vocab_size, config.max_position_embeddings, config.type_vocab_size,
    )


def linear(fan_in: int, fan_out: int, bias: bool = True) -> int:
    return fan_in * fan_out + (fan_out if bias else 0)


# ---- closed forms, per architecture ---------------------------------------------------------


def head(s: Sizes) -> int:
    """BERT's `classifier` has a bias; GPT-2's `score` does not."""
    return linear(s.hidden, s.labels, bias=s.arch == "bert")


def layer(s: Sizes) -> int:
    """One transformer block; both come to 4H^2 + 2HI + 9H + I, from different modules."""
    h, i = s.hidden, s.intermediate
    if s.arch == "bert":
        attention = 4 * linear(h, h)  # query, key, value, attention.output.dense
        feed_forward = linear(h, i) + linear(i, h)  # intermediate.dense, output.dense
        return attention + feed_forward + 2 * 2 * h  # two LayerNorms (weight + bias)
    attention = linear(h, 3 * h) + linear(h, h)  # c_attn (q, k, v fused), attn.c_proj
    feed_forward = linear(h, i) + linear(i, h)  # mlp.c_fc, mlp.c_proj
    return attention + feed_forward + 2 * 2 * h  # ln_1, ln_2


def backbone(s: Sizes) -> int:
    h = s.hidden
    if s.arch == "bert":
        embeddings = (s.vocab + s.positions + s.token_types) * h + 2 * h  # + embeddings.LayerNorm
        return embeddings + s.layers * layer(s) + linear(h, h)  # + pooler.dense
    return (s.vocab + s.positions) * h + s.layers * layer(s) + 2 * h  # wte, wpe, blocks, ln_f


def biases(s: Sizes) -> int:
    h, i = s.hidden, s.intermediate
    if s.arch == "bert":
        per_layer = 4 * h + i + h + 2 * h  # q, k, v, attn-out; intermediate; output; two LayerNorms
        return h + s.layers * per_layer + h  # + embeddings.LayerNorm, pooler
    per_layer = 3 * h + h + i + h + 2 * h  # c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj, ln_1, ln_2
    return s.layers * per_layer + h  # + ln_f


def lora(s: Sizes, rank: int) -> int:
    """A is rank x fan_in, B is fan_out x rank, on PEFT's default targets."""
    h = s.hidden
    if s.arch == "bert":
        return s.layers * 2 * rank * (h + h)  # query and value: h -> h
    return s.layers * rank * (h + 3 * h)  # c_attn: h -> 3h


def ia3(s: Sizes) -> int:
    """One vector per target: output-sized, or input-sized for feed-forward targets."""
    h, i = s.hidden, s.intermediate
    if s.arch == "bert":
        return s.layers * (h + h + h + i)  # key, value (outputs); attention.output.dense, output.dense (inputs)
    return s.layers * (3 * h + i)  # c_attn (output); mlp.c_proj (feed-forward: input)


def layernorms(s: Sizes) -> int:
    count = 1 + 2 * s.layers  # BERT: embeddings + two per layer; GPT-2: two per layer + ln_f
    return count * 2 * s.hidden


def prompt(s: Sizes, n: int) -> int:
    return n * s.hidden  # one input-embedding-wide vector per virtual token


def p_tuning(s: Sizes, n: int, e: int) -> int:
    return n * s.hidden + linear(s.hidden, e) + linear(e, e) + linear(e, s.hidden)  # embedding + 3-layer MLP


def prefix(s: Sizes, n: int) -> int:
    return n * s.layers * 2 * s.hidden  # a key and a value vector per virtual token and layer


def prefix_projected(s: Sizes, n: int, e: int) -> int:
    return n * s.hidden + linear(s.hidden, e) + linear(e, s.layers * 2 * s.hidden)


# ---- which parameters may require grad ------------------------------------------------------


def head_names(s: Sizes) -> str:
    """The head's trainable copy: in place for whole-model methods, PEFT's `modules_to_save` otherwise."""
    name, params = ("classifier", "(weight|bias)") if s.arch == "bert" else ("score", "weight")
    return rf"(base_model\.(model\.)?)?{name}(\.modules_to_save\.default)?\.{params}"


def layer_prefix(s: Sizes) -> str:
    return r"bert\.encoder\.layer" if s.arch == "bert" else r"transformer\.h"


@dataclass(frozen=True)
class Case:
    method: str
    cfg: object
    without_head: Callable[[Sizes], int]
    backbone_names: Callable[[Sizes], str]  # regex (fullmatch) for the trainable non-head parameters


CASES = {
    "full": Case("full", FullConfig(), backbone, lambda s: r".*"),
    "freeze": Case("freeze", FreezeConfig(), lambda s: 0, lambda s: r"(?!)"),
    "freeze_top_layer": Case(
        "freeze", FreezeConfig(train_top_layers=1), layer, lambda s: rf"{layer_prefix(s)}\.{s.layers - 1}\..*"
    ),
    "bitfit": Case("bitfit", BitFitConfig(), biases, lambda s: r".*\.bias"),
    "lora": Case(
        "lora", LoraConfig(rank=RANK), lambda s: lora(s, RANK),
        lambda s: rf"base_model\.model\.{layer_prefix(s)}\.\d+\."
        + (r"attention\.self\.(query|value)" if s.arch == "bert" else r"attn\.c_attn")
        + r"\.lora_[AB]\.default\.weight",
    ),
    "ia3": Case(
        "ia3", IA3Config(), ia3,
        lambda s: rf"base_model\.model\.{layer_prefix(s)}\.\d+\."
        + (r"(attention\.self\.(key|value)|attention\.output\.dense|output\.dense)" if s.arch == "bert"
           else r"(attn\.c_attn|mlp\.c_proj)")
        + r"\.ia3_l\.default",
    ),
    "ln_tuning": Case(
        "ln_tuning", LNTuningConfig(), layernorms,
        lambda s: (r"base_model\.model\.bert\.(embeddings|encoder\.layer\.\d+(\.attention)?\.output)\.LayerNorm"
                   if s.arch == "bert" else r"base_model\.model\.transformer\.(h\.\d+\.ln_[12]|ln_f)")
        + r"\.ln_tuning_layers\.default\.(weight|bias)",
    ),
    "prompt_tuning": Case(
        "prompt_tuning", PromptTuningConfig(num_virtual_tokens=VIRTUAL), lambda s: prompt(s, VIRTUAL),
        lambda s: r"prompt_encoder\.default\.embedding\.weight",
    ),
    "p_tuning": Case(
        "p_tuning", PTuningConfig(num_virtual_tokens=VIRTUAL, encoder=PromptEncoder.mlp, encoder_hidden_size=ENCODER),
        lambda s: p_tuning(s, VIRTUAL, ENCODER),
        lambda s: r"prompt_encoder\.default\.(embedding\.weight|mlp_head\.[024]\.(weight|bias))",
    ),
    "prefix_tuning": Case(
        "prefix_tuning", PrefixTuningConfig(num_virtual_tokens=VIRTUAL), lambda s: prefix(s, VIRTUAL),
        lambda s: r"prompt_encoder\.default\.embedding\.weight",
    ),
    "prefix_tuning_projected": Case(
        "prefix_tuning", PrefixTuningConfig(num_virtual_tokens=VIRTUAL, projection=True, projection_hidden_size=ENCODER),
        lambda s: prefix_projected(s, VIRTUAL, ENCODER),
        lambda s: r"prompt_encoder\.default\.(embedding\.weight|transform\.[02]\.(weight|bias))",
    ),
}
ARCHS = ["tiny_bert", "tiny_gpt2"]

# ftcli sets fan_in_fan_out for GPT-2's Conv1D targets, so PEFT has nothing to correct or warn about
CONV1D_NOTICE = "error:fan_in_fan_out is set to False but the target module is `Conv1D`:UserWarning"


@pytest.fixture(params=ARCHS)
def tiny(request):
    return request.getfixturevalue(request.param)


def test_the_tiny_sizes_keep_the_terms_apart(tiny):
    """With these sizes a closed form that uses the wrong width or misses a term cannot still match."""
    s = sizes_of(tiny.config)
    widths = {s.hidden, 3 * s.hidden, s.intermediate, ENCODER, s.layers * 2 * s.hidden, s.labels}
    assert len(widths) == 6, s
    assert s.intermediate != 4 * s.hidden  # GPT-2's default feed-forward width would hide a 4H-for-I slip
    assert s.labels == 2 and s.hidden % s.heads == 0  # the prefix splits each vector over the heads


def test_the_tiny_models_have_the_closed_form_size(tiny):
    s = sizes_of(tiny.config)
    assert sum(p.numel() for p in tiny.parameters()) == backbone(s) + head(s)
    assert head_modules(tiny) == (["classifier"] if s.arch == "bert" else ["score"])


@pytest.mark.filterwarnings(CONV1D_NOTICE)
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_trainable_count_matches_closed_form(tiny, case):
    s = sizes_of(tiny.config)
    modules = head_modules(tiny)
    model = METHODS.get(case.method).impl.apply(tiny, case.cfg, modules)
    counts = count_parameters(model, modules)
    assert counts.trainable_without_head == case.without_head(s)
    assert counts.trainable == case.without_head(s) + head(s)
    if case.method == "full":
        assert counts.total == backbone(s) + head(s)


@pytest.mark.filterwarnings(CONV1D_NOTICE)
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_only_the_intended_parameters_require_grad(tiny, case):
    s = sizes_of(tiny.config)
    model = METHODS.get(case.method).impl.apply(tiny, case.cfg, head_modules(tiny))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    allowed = re.compile(f"{case.backbone_names(s)}|{head_names(s)}")
    assert [n for n in trainable if not allowed.fullmatch(n)] == []
    head_params = 2 if s.arch == "bert" else 1
    assert len([n for n in trainable if re.fullmatch(head_names(s), n)]) == head_params
    assert not any("original_module" in n for n in trainable)


@pytest.mark.filterwarnings(CONV1D_NOTICE)
def test_gpt2_lora_on_conv1d_is_fan_in_fan_out_and_merges_exactly(tiny_gpt2, batch):
    s = sizes_of(tiny_gpt2.config)
    with torch.no_grad():
        base = tiny_gpt2(**batch).logits
    model = METHODS.get("lora").impl.apply(tiny_gpt2, LoraConfig(rank=RANK), ["score"]).eval()
    c_attn = model.base_model.model.transformer.h[0].attn.c_attn
    assert model.peft_config["default"].fan_in_fan_out is True  # saved in adapter_config.json
    assert c_attn.lora_A["default"].weight.shape == (RANK, s.hidden)
    assert c_attn.lora_B["default"].weight.shape == (3 * s.hidden, RANK)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, base, rtol=0, atol=0)  # B starts at zero
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
        unmerged = model(**batch).logits
        merged = model.merge_and_unload()(**batch).logits
    assert (unmerged - base).abs().max() > 1e-4
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5)  # a transposed merge would not match


@pytest.mark.filterwarnings(CONV1D_NOTICE)
def test_gpt2_ia3_scales_c_attn_outputs_and_mlp_inputs(tiny_gpt2, batch):
    s = sizes_of(tiny_gpt2.config)
    with torch.no_grad():
        before = tiny_gpt2(**batch).logits
    model = METHODS.get("ia3").impl.apply(tiny_gpt2, IA3Config(), ["score"]).eval()
    block = model.base_model.model.transformer.h[0]
    assert block.attn.c_attn.ia3_l["default"].numel() == 3 * s.hidden
    assert block.mlp.c_proj.ia3_l["default"].numel() == s.intermediate
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, before, rtol=0, atol=0)


def test_tiny_gpt2_pools_the_last_real_token(tiny_gpt2, tokenizer):
    """Its pad id is the tokenizer's, so a padded row scores as it does alone."""
    assert tiny_gpt2.config.pad_token_id == tokenizer.pad_token_id
    texts = ["a fine and moving film", "dull"]
    with torch.no_grad():
        padded = tiny_gpt2(**tokenizer(texts, padding=True, return_tensors="pt")).logits[1]
        alone = tiny_gpt2(**tokenizer(texts[1:], return_tensors="pt")).logits[0]
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["prompt_tuning", "p_tuning", "prefix_tuning"])
def test_prompt_methods_train_on_gpt2(tiny_gpt2, batch, method):
    entry = METHODS.get(method)
    model = entry.impl.apply(tiny_gpt2, entry.config_cls(num_virtual_tokens=VIRTUAL), ["score"]).train()
    model(**batch, labels=torch.tensor([0, 1, 0])).loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "prompt_encoder" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
