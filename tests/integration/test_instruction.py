"""instruction through the CLI on tiny causal LMs: train → eval → predict (batch and streamed)."""

from __future__ import annotations

import json

import pytest

from ftcli.cli.main import main
from tests.integration.conftest import train

FAST = ["task=instruction", "task.generation.max_new_tokens=4", "task.max_length=64"]
SCORES = {"loss", "perplexity", "exact_match", "rouge1", "rouge2", "rougeL", "rougeLsum"}


def read_json(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize(("model", "method", "extra"), [
    ("tiny_gpt2", "full", []),
    ("tiny_llama", "lora", ["task.packing=true"]),
    ("tiny_gpt2", "prompt_tuning", []),
    ("tiny_llama", "prefix_tuning", []),  # generates through the forward that takes the prefix as `past_key_values`
])
def test_instruction_trains_evaluates_and_generates(tmp_path, model, method, extra):
    run = train(tmp_path / "run", f"model={model}", f"method={method}", *FAST, *extra)
    metrics = read_json(run / "metrics.json")
    validation = metrics["validation"]
    assert set(validation) == SCORES and validation["perplexity"] == pytest.approx(2.718281828 ** validation["loss"])
    assert metrics["train"]["steps"] == 4 and metrics["train"]["samples_per_second"] > 0
    assert metrics["train"]["tokens_per_second"] > 0 and "mfu" not in metrics["train"]  # no MFU on a CPU
    assert (metrics["train"]["padding_fraction"] == 0) == ("task.packing=true" in extra)  # packed: no padding
    logged = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert all(r["tokens_per_second"] > 0 for r in logged if "loss" in r)
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == validation
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"instruction": "Add the two numbers.", "input": "2 and 3", "id": 7}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", "max_new_tokens=3",
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["id"] == 7 and isinstance(row["generated"], str)


def test_streamed_predict_prints_what_it_writes(tmp_path, capsys):
    run = train(tmp_path / "run", "model=tiny_gpt2", "method=full", *FAST, "task.generate_in_eval=false")
    assert set(read_json(run / "metrics.json")["validation"]) == {"loss", "perplexity"}
    source = tmp_path / "in.txt"
    source.write_text("first question\nsecond question\n")
    out = tmp_path / "out.jsonl"
    capsys.readouterr()
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", "stream=true",
                 "max_new_tokens=3", f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    streamed = capsys.readouterr().out.splitlines()
    written = [json.loads(line)["generated"] for line in out.read_text().splitlines()]
    assert [line.strip() for line in streamed] == written  # one line per input, in input order
    assert main(["predict", f"run_dir={run}", f"input={source}", "output=-", "stream=true",
                 f"hydra.run.dir={tmp_path / 'p2'}"]) == 3


def test_streaming_a_classifier_is_refused(tmp_path):
    run = train(tmp_path / "run", "method=full")
    source = tmp_path / "in.txt"
    source.write_text("fine\n")
    assert main(["predict", f"run_dir={run}", f"input={source}", "stream=true", f"hydra.run.dir={tmp_path / 'p'}"]) == 3


def test_packing_with_a_prompt_method_is_refused_before_loading(tmp_path):
    for method in ("prompt_tuning", "lora_prefix"):
        assert main(["train", "task=instruction", "model=tiny_gpt2", f"method={method}", "task.packing=true",
                     f"hydra.run.dir={tmp_path / method}"]) == 3
        assert not (tmp_path / method).exists()


@pytest.mark.parametrize(("metric", "maximize"), [("rougeL", True), ("perplexity", False), ("loss", False), ("mse", False)])
def test_which_way_a_metric_improves(metric, maximize):
    from ftcli.config.schema import TrainerConfig

    assert TrainerConfig(metric_for_best=metric).maximize is maximize


def test_sampled_predict_repeats_with_its_seed_and_bad_settings_are_refused(tmp_path):
    run = train(tmp_path / "run", "model=tiny_gpt2", "method=full", *FAST, "task.generate_in_eval=false")
    source = tmp_path / "in.txt"
    source.write_text("first question\nsecond question\n")

    def sample(name, *extra):
        out = tmp_path / f"{name}.jsonl"
        code = main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", "do_sample=true",
                     "max_new_tokens=6", *extra, f"hydra.run.dir={tmp_path / name}"])
        return code, (out.read_text() if out.exists() else None)

    first, again, other = sample("a"), sample("b"), sample("c", "seed=7", "temperature=5.0")
    assert first[0] == 0 and first == again and other[1] != first[1]
    assert sample("d", "top_p=1.5")[0] == 3


def test_exported_instruction_runs_are_text_generation_models(tmp_path):
    from transformers import AutoModelForCausalLM

    run = train(tmp_path / "run", "model=tiny_gpt2", "method=lora", *FAST, "task.generate_in_eval=false")
    out = tmp_path / "merged"
    assert main(["export", f"run_dir={run}", "merge=true", f"output={out}", f"hydra.run.dir={tmp_path / 'x'}"]) == 0
    card = (out / "README.md").read_text()
    assert "pipeline_tag: text-generation" in card and "# instruction language model (lora)" in card
    assert "- labels:" not in card
    assert AutoModelForCausalLM.from_pretrained(out).config.model_type == "gpt2"


# Causal LMs as `save_pretrained` writes them, loaded from their folder like any downloaded model:
# their configs have no `is_decoder` field, which only BERT-like encoders take
SAVED = {
    "llama": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=37, max_position_embeddings=512),
    "gpt2": dict(n_embd=32, n_layer=2, n_head=2, n_inner=37, n_positions=512),
    "qwen2": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=37, max_position_embeddings=512),
}


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """A folder per architecture holding a small random causal LM and the embedded tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    folders = {}
    for arch, settings in SAVED.items():
        folder = tmp_path_factory.mktemp(arch)
        AutoConfig.for_model(arch).save_pretrained(folder)
        AutoTokenizer.from_pretrained(embedded_tokenizer_path()).save_pretrained(folder)
        # the tokenizer as the folder loads it: for a qwen2 folder transformers makes it a
        # Qwen2Tokenizer, whatever tokenizer_config.json says, and that adds an <|endoftext|> token
        tokenizer = AutoTokenizer.from_pretrained(folder)
        special = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.cls_token_id,
                   "eos_token_id": tokenizer.eos_token_id or tokenizer.sep_token_id}
        config = AutoConfig.for_model(arch, vocab_size=len(tokenizer), **special, **settings)
        assert not hasattr(config, "is_decoder")
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(config).save_pretrained(folder)
        folders[arch] = folder
    return folders


@pytest.mark.parametrize("method", ["full", "lora"])
@pytest.mark.parametrize("arch", list(SAVED))
def test_a_saved_causal_lm_trains_evaluates_predicts_and_exports_from_its_folder(tmp_path, saved_models, arch, method):
    from transformers import AutoModelForCausalLM

    run = train(tmp_path / "run", f"model.name_or_path={saved_models[arch]}", f"method={method}", *FAST,
                "data.max_eval_samples=8")
    validation = read_json(run / "metrics.json")["validation"]
    assert set(validation) == SCORES
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == validation
    source = tmp_path / "in.txt"
    source.write_text("What is the capital of France?\n")
    out = tmp_path / "out.jsonl"
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", "max_new_tokens=3",
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    assert isinstance(json.loads(out.read_text())["generated"], str)
    exported = tmp_path / "exported"
    assert main(["export", f"run_dir={run}", f"output={exported}", f"merge={str(method == 'lora').lower()}",
                 f"hydra.run.dir={tmp_path / 'x'}"]) == 0
    assert AutoModelForCausalLM.from_pretrained(exported).config.model_type == arch
