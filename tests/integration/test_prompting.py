"""`ftcli eval task=prompting`: zero/few-shot scoring through the CLI, with no run directory."""

from __future__ import annotations

import json

import pytest

from ftcli.cli.main import main


def read_json(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("extra", [[], ["task.shots=2", "model=tiny_llama"], ["model=tiny_t5", "task.score=mean"]])
def test_prompting_scores_the_sample_and_its_metrics_match_its_predictions(tmp_path, extra):
    out = tmp_path / "e"
    assert main(["eval", "task=prompting", "data.max_eval_samples=12", *extra, f"hydra.run.dir={out}"]) == 0
    metrics = read_json(out / "metrics.json")
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and {r["split"] for r in rows} == {"validation"}
    for row in rows:
        assert row["prediction"] == max(row["scores"], key=row["scores"].get)
    accuracy = sum(r["prediction"] == r["label"] for r in rows) / len(rows)
    assert metrics["validation"]["accuracy"] == pytest.approx(accuracy)
    assert metrics["prompting"]["shots"] == (2 if "task.shots=2" in extra else 0)


def test_prompting_on_files_with_label_words(tmp_path):
    data = tmp_path / "v.jsonl"
    data.write_text("".join(json.dumps({"review": t, "y": y}) + "\n" for t, y in [("great", 1), ("awful", 0)]))
    out = tmp_path / "e"
    assert main(["eval", "task=prompting", f"data.validation_file={data}", "data.label_column=y",
                 "task.template='{review} It was'", "task.label_words={0: ' bad', 1: ' good'}",
                 f"hydra.run.dir={out}"]) == 0
    assert read_json(out / "metrics.json")["validation"]["accuracy"] in (0.0, 0.5, 1.0)


@pytest.mark.parametrize(("words", "code"), [
    (["task=prompting", "model=tiny_bert"], 5),  # an encoder has no language-model head
    (["task=prompting", "task.template=nothing to fill"], 3),
    (["task=prompting", "task.shotz=2"], 3),
])
def test_prompting_refusals(tmp_path, words, code):
    assert main(["eval", *words, f"hydra.run.dir={tmp_path / 'e'}"]) == code


def test_train_refuses_prompting(tmp_path):
    assert main(["train", "task=prompting", f"hydra.run.dir={tmp_path / 'r'}"]) == 3
    assert not (tmp_path / "r").exists()
