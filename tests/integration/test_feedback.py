"""task=feedback through the CLI on a tiny Llama: each objective trains, `eval` reproduces its
metrics, and `predict` writes from the objective's inputs alone."""

from __future__ import annotations

import json

import pytest

from ftcli.cli.main import main

BASE = ["model=tiny_llama", "task=feedback", "method=lora", "trainer.batch_size=4", "trainer.max_steps=4",
        "trainer.eval_strategy=steps", "trainer.eval_steps=4", "task.max_length=64",
        "task.generation.max_new_tokens=4"]
INPUTS = {"critique": ("prompt", "output"), "refine": ("prompt", "output", "feedback"),
          "imitate": ("prompt",), "hindsight": ("prompt",)}


def write_rows(folder, count=16):
    folder.mkdir(exist_ok=True)
    rows = [{"prompt": f"What is {i} plus 2?", "output": f"{i + 3}.", "feedback": f"Off by one: it is {i + 2}.",
             "refinement": f"{i + 2}."} for i in range(count)]
    for name, part in (("train.jsonl", rows[:12]), ("validation.jsonl", rows[12:])):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    return [f"data.train_file={folder / 'train.jsonl'}", f"data.validation_file={folder / 'validation.jsonl'}"]


def read_json(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("objective", list(INPUTS))
def test_each_objective_trains_evaluates_and_predicts(tmp_path, objective):
    data = write_rows(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", *BASE, f"task.objective={objective}", f"hydra.run.dir={run}", *data]) == 0
    validation = read_json(run / "metrics.json")["validation"]
    assert {"loss", "perplexity", "rougeL", "chrf", "exact_match"} <= set(validation)
    assert main(["eval", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'e'}"]) == 0
    assert read_json(tmp_path / "e" / "metrics.json")["validation"] == pytest.approx(validation, rel=1e-5, abs=1e-6)

    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    row = {"prompt": "What is 9 plus 2?", "output": "12.", "feedback": "Off by one: it is 11."}
    source.write_text(json.dumps({k: row[k] for k in INPUTS[objective]}) + "\n")
    assert main(["predict", f"run_dir={run}", f"input={source}", f"output={out}",
                 f"hydra.run.dir={tmp_path / 'p'}"]) == 0
    [written] = [json.loads(line) for line in out.read_text().splitlines()]
    assert isinstance(written["generated"], str)


def test_a_predict_row_without_the_objective_s_input_is_refused(tmp_path):
    data = write_rows(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", *BASE, "task.objective=refine", "trainer.eval_strategy=no", f"hydra.run.dir={run}",
                 *data]) == 0
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"prompt": "What is 9 plus 2?", "output": "12."}) + "\n")
    assert main(["predict", f"run_dir={run}", f"input={source}", f"hydra.run.dir={tmp_path / 'p'}"]) == 4
