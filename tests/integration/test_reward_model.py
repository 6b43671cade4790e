"""reward_model through the CLI: the embedded MiniLM learns to rank the bundled sample's held-out
pairs, and its run is evaluated, used for predictions and exported; a causal LM reads HH
conversations with margins; a bad pair stops training before anything is trained."""

from __future__ import annotations

import json

import pytest

from ftcli.cli.main import main
from ftcli.errors import EXIT_DATA

# five steps of 8 pairs at 4x the default rate: MiniLM then ranks 75-82% of the 60 held-out pairs, at
# a loss of 0.666-0.686 (seeds 1-5 and 42), where untrained heads rank 33-70% at a loss of 0.692 or more
RANKING = ["task=reward_model", "method=full", "trainer.max_steps=5", "trainer.batch_size=8", "trainer.lr=2e-4",
           "trainer.logging_steps=2", "trainer.eval_strategy=no", "trainer.save_every=null"]
SCORES = {"loss", "accuracy", "mean_margin", "mean_chosen_reward", "mean_rejected_reward"}


def read_json(path):
    return json.loads(path.read_text())


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run_command(*argv):
    code = main(list(argv))
    assert code == 0, f"{argv[0]} exited {code}"


def predict(run, tmp_path, rows):
    source, out = write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"
    run_command("predict", f"run_dir={run}", f"input={source}", f"output={out}", f"hydra.run.dir={tmp_path / 'p'}")
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_minilm_learns_to_rank_the_held_out_sample_pairs_and_its_run_is_used(tmp_path):
    run = tmp_path / "run"
    run_command("train", *RANKING, f"hydra.run.dir={run}")
    validation = read_json(run / "metrics.json")["validation"]
    assert set(validation) == SCORES
    assert validation["accuracy"] >= 0.7 and validation["loss"] < 0.69 and validation["mean_margin"] > 0
    logged = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "accuracy" in r and "mean_margin" in r] == [2, 4, 5]

    run_command("eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}")
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == validation

    rows = [{"prompt": "What is 3 plus 4?", "response": "3 plus 4 is 7.", "id": 1},
            {"prompt": "Which day comes after Friday?", "chosen": "Saturday comes after Friday.",
             "rejected": "Stop asking me easy questions.", "id": 2}]
    single, pair = predict(run, tmp_path, rows)
    assert single["id"] == 1 and isinstance(single["reward"], float)
    assert set(pair) - set(rows[1]) == {"reward_chosen", "reward_rejected", "prefers_chosen"}

    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    exported = tmp_path / "exported"
    run_command("export", f"run_dir={run}", f"output={exported}", f"hydra.run.dir={tmp_path / 'x'}")
    model = AutoModelForSequenceClassification.from_pretrained(exported)
    scorer = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(exported))
    [score] = scorer([{"text": rows[0]["prompt"], "text_pair": rows[0]["response"]}])
    assert score["label"] == "reward" and score["score"] == pytest.approx(single["reward"], abs=1e-5)  # the raw reward


def test_a_causal_lm_reads_hh_conversations_with_margins(tmp_path):
    def hh(question, answer):
        return f"\n\nHuman: {question}\n\nAssistant: {answer}"

    rows = [{"chosen": hh(f"What is {i} plus {i}?", f"{2 * i}."), "rejected": hh(f"What is {i} plus {i}?", "No idea."),
             "gap": i % 3} for i in range(24)]
    data = write_jsonl(tmp_path / "hh.jsonl", rows)
    run = tmp_path / "run"
    run_command("train", "task=reward_model", "model=tiny_llama", "method=lora", "task.input=conversation",
                "task.margin_column=gap", f"data.train_file={data}", f"data.validation_file={data}",
                "debug=smoke", f"hydra.run.dir={run}")
    assert "input: conversation" in (run / "config.yaml").read_text()
    run_command("eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}")
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == read_json(run / "metrics.json")["validation"]
    [prediction] = predict(run, tmp_path, [{"response": hh("What is 2 plus 2?", "4.")}])
    assert isinstance(prediction["reward"], float)


def test_a_pair_with_the_same_answer_twice_stops_training_before_it_starts(tmp_path, capsys):
    rows = [{"prompt": f"Question {i}?", "chosen": f"Answer {i}.", "rejected": "I don't know."} for i in range(6)]
    rows[4]["rejected"] = rows[4]["chosen"]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    run = tmp_path / "run"
    assert main(["train", "task=reward_model", "model=tiny_bert", f"data.train_file={data}",
                 f"data.validation_file={data}", f"hydra.run.dir={run}"]) == EXIT_DATA
    message = " ".join(capsys.readouterr().err.split())
    assert f"{data}: record 4: 'chosen' and 'rejected' are the same answer" in message
    assert not (run / "model").exists() and not (run / "metrics.json").exists()
