"""task=preference and task=kto through the CLI on a tiny Llama: train → eval → predict, the
precomputed reference, resume, and bad rows refused before anything is written."""

from __future__ import annotations

import json
import os
import signal

import pytest
from safetensors.torch import load_file

from ftcli.cli.main import main

BASE = ["model=tiny_llama", "trainer.batch_size=4", "trainer.max_steps=6", "trainer.eval_strategy=steps",
        "trainer.eval_steps=3", "trainer.logging_steps=3", "task.max_length=48", "task.generation.max_new_tokens=3"]
PAIR_METRICS = {"loss", "reward_accuracy", "reward_margin", "chosen_reward", "rejected_reward", "chosen_logp",
                "rejected_logp"}


def write_pairs(folder, count=24):
    """Sums answered right (chosen) or with a refusal (rejected)."""
    folder.mkdir(exist_ok=True)
    rows = [{"prompt": f"What is {i} plus {i % 5}?", "chosen": f"{i + i % 5}.", "rejected": "I will not say."}
            for i in range(count)]
    split = count * 3 // 4
    for name, part in (("train.jsonl", rows[:split]), ("validation.jsonl", rows[split:])):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    return [f"data.train_file={folder / 'train.jsonl'}", f"data.validation_file={folder / 'validation.jsonl'}"]


def read_json(path):
    return json.loads(path.read_text())


def weights(run):
    folder = run / ("model" if (run / "model").is_dir() else "adapter")
    [file] = [f for f in folder.iterdir() if f.suffix == ".safetensors"]
    return load_file(str(file))


def train(run, *overrides):
    assert main(["train", *BASE, f"hydra.run.dir={run}", *overrides]) == 0
    return run


def test_preference_trains_evaluates_and_predicts(tmp_path):
    data = write_pairs(tmp_path / "data")
    run = train(tmp_path / "run", "task=preference", "method=lora", *data)
    validation = read_json(run / "metrics.json")["validation"]
    assert set(validation) == PAIR_METRICS
    assert validation["reward_margin"] == pytest.approx(validation["chosen_reward"] - validation["rejected_reward"])
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert {"reward_accuracy", "reward_margin"} <= set(records[0])  # the step's own figures in the log
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    again = read_json(tmp_path / "e" / "metrics.json")["validation"]
    assert again == pytest.approx(validation, rel=1e-5, abs=1e-6)

    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    rows = [{"prompt": "What is 2 plus 2?"}, {"prompt": "What is 2 plus 2?", "response": "4."},
            {"prompt": "What is 2 plus 2?", "chosen": "4.", "rejected": "I will not say."}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}",
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    generated, scored, paired = [json.loads(line) for line in out.read_text().splitlines()]
    assert isinstance(generated["generated"], str) and "reward" not in generated
    assert isinstance(scored["reward"], float) and scored["logp"] < 0
    assert paired["reward_chosen"] == pytest.approx(scored["reward"], abs=1e-6)  # the same answer, the same reward
    assert paired["prefers_chosen"] == (paired["reward_chosen"] > paired["reward_rejected"])


@pytest.mark.parametrize("method", ["lora", "full"])
def test_precomputed_reference_trains_as_the_live_reference_does(tmp_path, method):
    data = write_pairs(tmp_path / "data")
    live = train(tmp_path / "live", "task=preference", f"method={method}", *data)
    kept = train(tmp_path / "kept", "task=preference", f"method={method}", "task.precompute_reference=true", *data)
    assert read_json(kept / "metrics.json")["validation"] == pytest.approx(
        read_json(live / "metrics.json")["validation"], rel=1e-5, abs=1e-6)
    a, b = weights(live), weights(kept)
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] - b[name]).abs().max() < 1e-5, name


@pytest.mark.parametrize("loss", ["ipo", "simpo", "orpo"])
def test_every_loss_trains_and_reports_its_rewards(tmp_path, loss):
    run = train(tmp_path / "run", "task=preference", "method=lora", f"task.loss={loss}", "task.sft_weight=0.5",
                *write_pairs(tmp_path / "data"))
    assert set(read_json(run / "metrics.json")["validation"]) == PAIR_METRICS


def test_a_preference_run_stopped_mid_way_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """The precomputed reference is read back from the checkpoints, not computed again."""
    from ftcli import ui
    from ftcli.errors import EXIT_INTERRUPTED
    from ftcli.tasks import scored_answers

    data = write_pairs(tmp_path / "data")
    settings = ["task=preference", "method=lora", "task.precompute_reference=true", "trainer.save_every=2", *data]
    whole, stopped = train(tmp_path / "whole", *settings), tmp_path / "stopped"
    on_step = ui.TrainProgress.on_step

    def interrupt_at_step_3(self, step, record):
        on_step(self, step, record)
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(ui.TrainProgress, "on_step", interrupt_at_step_3)
    assert main(["train", *BASE, f"hydra.run.dir={stopped}", *settings]) == EXIT_INTERRUPTED
    monkeypatch.setattr(ui.TrainProgress, "on_step", on_step)

    def computed_again(*args, **kwargs):
        raise AssertionError("the reference log-probabilities were computed again")

    monkeypatch.setattr(scored_answers, "reference_only", computed_again)
    assert main(["train", *BASE, f"hydra.run.dir={stopped}", "trainer.resume=auto", *settings]) == 0
    assert read_json(stopped / "metrics.json")["validation"] == read_json(whole / "metrics.json")["validation"]
    a, b = weights(whole), weights(stopped)
    assert all((a[k] == b[k]).all() for k in a)


@pytest.mark.parametrize(("row", "says"), [
    ({"prompt": "What is 1 plus 1?", "rejected": "No."}, "record 2: has no 'chosen'"),
    ({"prompt": "What is 1 plus 1?", "chosen": "2.", "rejected": "2."}, "record 2: 'chosen' and 'rejected' are the same answer"),
    ({"prompt": "", "chosen": "2.", "rejected": "No."}, "record 2: the prompt is empty"),
    ({"prompt": "What is one plus one? " * 30, "chosen": "2.", "rejected": "No."}, "record 2: the prompt alone is"),
])
def test_a_bad_pair_is_refused_naming_the_row_and_nothing_is_written(tmp_path, capsys, monkeypatch, row, says):
    from ftcli.errors import EXIT_DATA

    monkeypatch.setenv("COLUMNS", "400")
    folder = tmp_path / "data"
    write_pairs(folder)
    rows = (folder / "train.jsonl").read_text().splitlines()
    rows.insert(2, json.dumps(row))
    (folder / "train.jsonl").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    code = main(["train", *BASE, f"hydra.run.dir={run}", "task=preference", f"data.train_file={folder / 'train.jsonl'}",
                 f"data.validation_file={folder / 'validation.jsonl'}"])
    assert code == EXIT_DATA
    assert says in " ".join(capsys.readouterr().err.split())
    assert not run.exists() or not any(run.iterdir())


def test_kto_trains_on_unpaired_pairs_evaluates_and_predicts(tmp_path):
    run = train(tmp_path / "run", "task=kto", "task.unpair=true", "method=lora", *write_pairs(tmp_path / "data"))
    validation = read_json(run / "metrics.json")["validation"]
    assert set(validation) == {"loss", "reward_accuracy", "reward_margin", "desirable_reward", "undesirable_reward", "kl"}
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == pytest.approx(validation, rel=1e-5, abs=1e-6)
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"prompt": "What is 2 plus 2?", "response": "4."}) + "\n")
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}", f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    assert isinstance(json.loads(out.read_text())["reward"], float)


def test_skip_long_prompts_leaves_such_pairs_out_and_counts_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    folder = tmp_path / "data"
    data = write_pairs(folder)
    with (folder / "train.jsonl").open("a") as rows:
        rows.write(json.dumps({"prompt": "What is one plus one? " * 30, "chosen": "2.", "rejected": "No."}) + "\n")
    run = train(tmp_path / "run", "task=preference", "method=lora", "task.skip_long_prompts=true", *data)
    printed = capsys.readouterr()
    assert "1 of 19 rows left out: their prompt alone fills task.max_length=48" in " ".join((printed.out + printed.err).split())
    assert (run / "metrics.json").is_file()


def test_preference_trains_on_the_bundled_feedback_sample(tmp_path):
    """Rows of natural-language feedback are pairs: each refinement preferred to its first output."""
    from ftcli.data.splits import sample_dir

    sample = sample_dir("feedback")
    run = tmp_path / "run"
    assert main(["train", "task=preference", "model=tiny_llama", "debug=smoke",
                 f"data.train_file={sample / 'train.jsonl'}", f"data.validation_file={sample / 'validation.jsonl'}",
                 f"hydra.run.dir={run}"]) == 0
    validation = read_json(run / "metrics.json")["validation"]
    assert set(validation) == PAIR_METRICS and validation["chosen_logp"] < 0


def test_dpo_on_the_bundled_sample_ranks_the_training_pairs_above_chance(tmp_path):
    """The embedded MiniLM as a decoder, LoRA, eight steps: the chosen answers' implicit reward
    rises above the rejected ones' on most of the pairs it trained on (0.86 and 0.91 on seeds 1 and 2)."""
    from ftcli.data.splits import sample_dir

    sample = sample_dir("preference") / "train.jsonl"
    run = tmp_path / "run"
    assert main(["train", "task=preference", "method=lora", f"data.train_file={sample}",
                 f"data.validation_file={sample}", "data.max_train_samples=64", "data.max_eval_samples=64",
                 "trainer.max_steps=8", "trainer.batch_size=8", "task.max_length=96", "trainer.eval_strategy=no",
                 f"hydra.run.dir={run}"]) == 0
    validation = read_json(run / "metrics.json")["validation"]
    assert validation["reward_accuracy"] > 0.7 and validation["loss"] < 0.6  # chance: 0.5 and log 2 = 0.693
