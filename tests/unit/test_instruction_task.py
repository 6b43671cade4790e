"""Tests of the instruction task: templates, loss masks, truncation, packing, generation and its scores."""

from __future__ import annotations

import math
from contextlib import nullcontext

import pytest
import torch

from ftcli.config.schema import DataConfig, GenerationConfig
from ftcli.engine.generation import generate_ids, teacher_forced_loss
from ftcli.engine.step import IGNORE_INDEX as IGNORE
from ftcli.errors import DataError, ModelError
from ftcli.tasks import TASKS
from ftcli.tasks.chat import Segment
from ftcli.tasks.generating import Generated
from ftcli.tasks.instruction import InstructionConfig, fit
from ftcli.tasks.notes import NOTE, RowNote

TASK = TASKS.get("instruction").impl
ROWS = [
    {"prompt": "What is the capital of France?", "response": "Paris"},
    {"instruction": "Add the two numbers.", "input": "2 and 3", "output": "5"},
    {"messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"}, {"role": "assistant", "content": "see you"},
    ]},
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>\n{% endif %}"
)


@pytest.fixture
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def bound(tokenizer=None, **settings):
    return TASK.bind(InstructionConfig(**settings), DataConfig(), [], tokenizer)


def encode(tokenizer, rows, with_labels=True, **settings):
    return bound(tokenizer, **settings).encode(rows, "x.jsonl", with_labels)


def trained_text(tokenizer, feature) -> str:
    return tokenizer.decode([t for t in feature["labels"] if t != IGNORE])


def test_plain_template_trains_on_the_response_and_its_end_token_only(tokenizer):
    feature = encode(tokenizer, ROWS[:1])[0]
    text = tokenizer.decode(feature["input_ids"])
    assert text == "# # # instruction : what is the capital of france? # # # response : paris [SEP]"
    assert trained_text(tokenizer, feature) == "paris [SEP]"
    assert feature["labels"][-1] == tokenizer.sep_token_id  # no EOS in a BERT vocabulary: SEP ends answers
    assert feature["prompt_ids"] == feature["input_ids"][: len(feature["prompt_ids"])]
    assert len(feature["prompt_ids"]) == len(feature["input_ids"]) - 2 and feature["reference"] == "Paris"


def test_alpaca_input_joins_the_instruction(tokenizer):
    feature = encode(tokenizer, ROWS[1:2])[0]
    assert "add the two numbers. # # # input : 2 and 3 # # # response" in tokenizer.decode(feature["prompt_ids"])
    assert trained_text(tokenizer, feature) == "5 [SEP]"


def test_every_assistant_turn_of_a_conversation_is_trained(tokenizer):
    feature = encode(tokenizer, ROWS[2:])[0]
    assert trained_text(tokenizer, feature) == "hello [SEP] see you [SEP]"
    prompt = tokenizer.decode(feature["prompt_ids"])
    assert prompt.endswith("# # # instruction : bye # # # response :") and "hello" in prompt
    assert feature["reference"] == "see you"


def test_train_on_prompt_and_system_prompt(tokenizer):
    feature = encode(tokenizer, ROWS[:1], train_on_prompt=True, system_prompt="Be brief.")
    assert feature[0]["labels"] == feature[0]["input_ids"]
    assert tokenizer.decode(feature[0]["input_ids"]).startswith("# # # system : be brief. # # # instruction")


def test_chat_template_is_used_when_the_tokenizer_has_one(tokenizer):
    tokenizer.chat_template = CHAT_TEMPLATE
    [single, chat] = encode(tokenizer, [ROWS[0], ROWS[2]])
    assert tokenizer.decode(single["prompt_ids"]) == "< user > what is the capital of france? < assistant >"
    assert trained_text(tokenizer, single) == "paris"
    assert trained_text(tokenizer, chat) == "hello see you"
    plain = encode(tokenizer, ROWS[:1], template="plain")[0]
    assert trained_text(tokenizer, plain) == "paris [SEP]"


def test_a_template_that_rewrites_earlier_turns_is_refused(tokenizer):
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}|{% endfor %}{{ messages | length }}"
    with pytest.raises(ModelError, match="prefix"):
        encode(tokenizer, ROWS[:1])


def test_template_chat_needs_a_chat_template(tokenizer):
    with pytest.raises(ModelError, match="no chat template"):
        encode(tokenizer, ROWS[:1], template="chat")


def test_predict_input_is_all_prompt(tokenizer):
    [plain_text, row] = encode(tokenizer, [{"text": "hello"}, ROWS[0]], with_labels=False)
    assert set(row) == {"input_ids", NOTE}
    assert tokenizer.decode(row["input_ids"]).endswith("# # # response :")  # the reference is left out
    assert tokenizer.decode(plain_text["input_ids"]) == "# # # instruction : hello # # # response :"


@pytest.mark.parametrize(("row", "message"), [
    ({"question": "q", "answer": "a"}, "none of the columns"),
    ({"prompt": 3, "response": "a"}, "'prompt' is int"),
    ({"messages": [{"role": "robot", "content": "x"}]}, r"messages\[0\]"),
    ({"messages": "hi"}, "non-empty list"),
    ({"prompt": "only a question"}, "no assistant turn"),
])
def test_bad_rows_name_the_record(tokenizer, row, message):
    with pytest.raises(DataError, match=f"record 1: .*{message}|record 1.*{message}"):
        encode(tokenizer, [ROWS[0], row])


def test_fit_cuts_the_end_but_keeps_a_response_to_train_on():
    segments = [Segment([1, 2, 3, 4, 5, 6], False), Segment([7, 8, 9], True)]
    assert fit(segments, 20) == ([1, 2, 3, 4, 5, 6, 7, 8, 9], [False] * 6 + [True] * 3)
    assert fit(segments, 8) == ([1, 2, 3, 4, 5, 6, 7, 8], [False] * 6 + [True] * 2)
    ids, mask = fit(segments, 4)  # the prompt alone is longer: its beginning goes, half the budget is response
    assert ids == [5, 6, 7, 8] and mask == [False, False, True, True]


def test_long_rows_are_cut_to_max_length(tokenizer):
    feature = encode(tokenizer, [{"prompt": "word " * 50, "response": "yes"}], max_length=16)[0]
    assert len(feature["input_ids"]) == 16 and len(feature["prompt_ids"]) == 16
    assert trained_text(tokenizer, feature) == "yes [SEP]"


def test_exact_match_and_rouge_hand_computed():
    features = [{"reference": "Paris "}, {"reference": "the cat sat on the mat"}]
    scores = bound().metrics(["paris", "the cat sat"], features)
    assert scores["exact_match"] == 0.5
    # rouge1: 1.0 for the first; the second has P 3/3, R 3/6, F 2/3
    assert scores["rouge1"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert bound().scores(Generated(None, None), features) == {"loss": None}  # nothing generated: no text scores


def tiny_lm(arch: str, **config):
    from transformers import AutoModelForCausalLM

    from ftcli.models.tiny import tiny_config

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_config(arch, **config)).eval()


@pytest.fixture(params=["gpt2", "llama"])
def causal_lm(request):
    return tiny_lm(request.param)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_packing_gives_the_same_loss_as_padding(tokenizer, arch):
    from ftcli.models.tiny import tiny_config

    causal_lm = tiny_lm(arch, **TASK.model_config(InstructionConfig(packing=True), tiny_config(arch)))
    features = encode(tokenizer, ROWS)
    padded = bound(tokenizer).collator()(features)
    packed = bound(tokenizer, packing=True).collator()(features)
    assert packed["input_ids"].shape == (1, sum(len(f["input_ids"]) for f in features))
    assert "attention_mask" not in packed and packed["position_ids"][0, len(features[0]["input_ids"])] == 0
    with torch.no_grad():
        # a mean over the same response tokens: equal only if no example attends to another
        assert causal_lm(**packed).loss.item() == pytest.approx(causal_lm(**padded).loss.item(), abs=1e-5)
        alone = causal_lm(input_ids=torch.tensor([features[1]["input_ids"]])).logits[0]
        start = len(features[0]["input_ids"])
        together = causal_lm(**packed).logits[0, start : start + len(features[1]["input_ids"])]
    assert torch.allclose(alone, together, atol=1e-5)


def test_loss_is_per_token_whatever_the_batching(tokenizer, causal_lm):
    features = encode(tokenizer, ROWS)
    collate = bound(tokenizer).collator()
    one, three = (teacher_forced_loss(causal_lm, features, collate, size) for size in (1, 3))
    assert one == pytest.approx(three, rel=1e-5)
    with torch.no_grad():
        logits = causal_lm(**collate(features)).logits
    labels = collate(features)["labels"]
    manual = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=IGNORE)
    assert one == pytest.approx(manual.item(), rel=1e-5)


def test_batched_generation_matches_one_at_a_time(tokenizer, causal_lm):
    prompts = bound(tokenizer).prompts(encode(tokenizer, ROWS))
    collate = bound(tokenizer).prompt_collator()
    settings = {"max_new_tokens": 5, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    batched = generate_ids(causal_lm, prompts, collate, 3, settings)
    alone = generate_ids(causal_lm, prompts, collate, 1, settings)
    assert batched == alone and all(len(ids) == 5 for ids in alone)  # the prompt is cut off


def test_perplexity_is_exp_of_the_loss():
    result = bound(generate_in_eval=False).scores(Generated(None, 2.0), [])
    assert result == {"loss": 2.0, "perplexity": pytest.approx(math.exp(2.0))}
    assert TASK.best_metric(InstructionConfig(generate_in_eval=False)) == "perplexity"


def test_evaluation_generates_unless_generate_in_eval_is_off_and_predict_always_does(tokenizer):
    model, short = tiny_lm("gpt2"), GenerationConfig(max_new_tokens=3)
    labelled, unlabelled = encode(tokenizer, ROWS), encode(tokenizer, ROWS, with_labels=False)
    quiet = bound(tokenizer, generate_in_eval=False, generation=short)
    evaluated = quiet.outputs(model, labelled, 2, nullcontext)
    assert evaluated.texts is None
    assert evaluated.loss == pytest.approx(teacher_forced_loss(model, labelled, quiet.collator(), 2), rel=1e-6)
    assert set(quiet.scores(evaluated, labelled)) == {"loss", "perplexity"}
    predicted = quiet.outputs(model, unlabelled, 2, nullcontext)
    assert predicted.loss is None and len(predicted.texts) == len(ROWS)
    assert quiet.predictions(predicted, unlabelled) == [{"generated": text} for text in predicted.texts]
    generating = bound(tokenizer, generation=short)
    scores = generating.scores(generating.outputs(model, labelled, 2, nullcontext), labelled)
    assert list(scores)[:2] == ["loss", "perplexity"] and {"exact_match", "rougeL"} <= set(scores)


@pytest.mark.parametrize("name", ["tiny:bert", "tiny:gpt2"])
def test_models_built_for_instruction_read_left_to_right(name):
    from ftcli.config.schema import ModelConfig
    from ftcli.models.loading import build_model, load_config

    settings = TASK.model_config(InstructionConfig(), load_config(ModelConfig(name)))
    model = build_model(ModelConfig(name), TASK.model_class(), [], **settings).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    changed = ids.clone()
    changed[0, -1] = 42
    with torch.no_grad():
        before, after = model(input_ids=ids).logits, model(input_ids=changed).logits
    assert torch.allclose(before[0, :-1], after[0, :-1], atol=1e-6)  # a later token changes no earlier position
    assert not torch.allclose(before[0, -1], after[0, -1])


@pytest.mark.parametrize(("arch", "settings"), [
    ("bert", {"is_decoder": True}),  # an encoder made a left-to-right LM
    ("gpt2", {}), ("llama", {}), ("qwen2", {}),  # decoders already, whose configs have no is_decoder field
])
def test_only_an_encoder_is_made_a_decoder(arch, settings):
    from transformers import AutoConfig

    assert TASK.model_config(InstructionConfig(), AutoConfig.for_model(arch)) == settings
    assert TASK.model_config(InstructionConfig(packing=True), AutoConfig.for_model(arch)) == {
        **settings, "use_cache": False,
    }


def test_generation_stops_at_the_end_of_an_assistant_turn(tokenizer):
    assert bound(tokenizer).stop_ids() == [tokenizer.sep_token_id]
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert bound(tokenizer).stop_ids() == sorted({tokenizer.sep_token_id, end})
    feature = encode(tokenizer, ROWS[:1])[0]
    assert trained_text(tokenizer, feature) == "paris <|im_end|>"  # the model learns to write the stop token


def test_predict_prompts_cut_or_empty_are_noted(tokenizer):
    rows = [{"text": "hello"}, {"text": "word " * 40}, {"prompt": "  "}]
    features = encode(tokenizer, rows, with_labels=False, max_length=16)
    assert [f[NOTE] for f in features] == [RowNote(0), RowNote(1, cut=True), RowNote(2, empty=True)]
    assert all(len(f["input_ids"]) <= 16 for f in features)
