"""Ensembles through the CLI: `eval` and `predict` with `run_dir=[a,b]` combine the runs'
probabilities, an ensemble of one run is that run, and runs that do not combine are refused."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ftcli.cli.main import main
from ftcli.errors import EXIT_CONFIG

ROWS = ["A calm, lovely afternoon.", "The battery died after a day.", "", "Fine, I guess, but too loud."]


def predicted(tmp_path, name, run_dir, *overrides):
    """The rows `predict` writes for ROWS with `run_dir` (one run, or a list)."""
    source = tmp_path / "input.jsonl"
    source.write_text("".join(json.dumps({"text": text}) + "\n" for text in ROWS))
    out = tmp_path / name
    assert main(["predict", f"run_dir={run_dir}", f"input={source}", f"hydra.run.dir={out}", *overrides]) == 0
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def evaluated(tmp_path, name, run_dir, *overrides):
    assert main(["eval", f"run_dir={run_dir}", f"hydra.run.dir={tmp_path / name}", *overrides]) == 0
    return json.loads((tmp_path / name / "metrics.json").read_text())


def probs(rows):
    return np.array([[row["probs"][name] for name in ("negative", "positive")] for row in rows])


def test_an_ensemble_of_one_run_is_that_run(tmp_path, trained_runs):
    run = trained_runs["full"]
    assert evaluated(tmp_path, "one", f"[{run}]") == evaluated(tmp_path, "alone", run)
    assert predicted(tmp_path, "p-one", f"[{run}]") == predicted(tmp_path, "p-alone", run)
    assert not (tmp_path / "p-one" / "ensemble.json").exists()


def test_two_runs_predict_the_mean_of_their_probabilities_or_their_vote(tmp_path, trained_runs, capsys):
    a, b = trained_runs["full"], trained_runs["lora"]
    first, second = probs(predicted(tmp_path, "a", a)), probs(predicted(tmp_path, "b", b))
    assert not np.allclose(first, second, atol=1e-4)  # the runs differ, so the mean says something
    mean_rows = predicted(tmp_path, "mean", f"[{a},{b}]")
    mean = (first + second) / 2
    np.testing.assert_allclose(probs(mean_rows), mean, atol=1.5e-6)  # each file rounds to 6 decimals
    assert [row["label"] for row in mean_rows] == [["negative", "positive"][i] for i in mean.argmax(1)]
    assert json.loads((tmp_path / "mean" / "ensemble.json").read_text()) == {"runs": [str(a), str(b)],
                                                                            "combined_by": "mean"}
    assert [row.get("empty") for row in mean_rows] == [None, None, True, None]  # the rows' notes still come

    votes = np.eye(2)[first.argmax(1)] + np.eye(2)[second.argmax(1)]
    np.testing.assert_allclose(probs(predicted(tmp_path, "vote", f"[{a},{b}]", "ensemble=vote")),
                               (votes + mean) / 3, atol=2e-6)

    capsys.readouterr()
    metrics = evaluated(tmp_path, "eval", f"[{a},{b}]")
    assert metrics["ensemble"] == {"runs": [str(a), str(b)], "combined_by": "mean"}
    assert f"eval of the mean of 2 runs: {a}, {b}" in " ".join(capsys.readouterr().out.split())
    assert 0 <= metrics["validation"]["accuracy"] <= 1 and metrics["validation"]["loss"] > 0


@pytest.fixture
def copies(tmp_path, trained_runs):
    """Copies of finished runs changed to what an ensemble cannot take, or can."""
    from transformers import AutoTokenizer

    def copy(name, source):
        shutil.copytree(source, tmp_path / name)
        return tmp_path / name

    relabelled = copy("relabelled", trained_runs["full"])
    (relabelled / "labels.json").write_text(json.dumps({"labels": ["negative", "neutral"]}))
    ner = trained_runs.other("ner", "task=ner")
    other_vocabulary = copy("other-vocabulary", ner)
    tokenizer = AutoTokenizer.from_pretrained(other_vocabulary / "model")
    tokenizer.add_tokens(["zzyzx"])
    tokenizer.save_pretrained(other_vocabulary / "model")
    summarization = trained_runs.other("summarization", "task=summarization", "model=tiny_t5", "trainer.max_steps=1",
                                       "trainer.eval_strategy=no", "data.max_eval_samples=2",
                                       "task.generation.max_new_tokens=2")
    return {"full": trained_runs["full"], "relabelled": relabelled, "ner": ner, "ner-copy": copy("ner-copy", ner),
            "other-vocabulary": other_vocabulary, "summarization": summarization,
            "summarization-copy": copy("summarization-copy", summarization)}


@pytest.mark.parametrize("members, message", [
    (["full", "ner"], "run_dir: {ner} is a task=ner run and {full} a task=sentiment run"),
    (["full", "relabelled"], "run_dir: the labels of {relabelled} (negative, neutral) differ from those of {full} "
     "(negative, positive): it lacks positive and adds neutral"),
    (["summarization", "summarization-copy"], "run_dir: task=summarization runs cannot be combined into an ensemble: "
     "it generates text"),
    (["ner", "other-vocabulary"], "run_dir: task=ner combines probabilities token by token, and the tokenizers of "
     "{other-vocabulary} split text differently from that of {ner}"),
])
def test_runs_that_do_not_combine_are_refused_naming_them(tmp_path, capsys, copies, members, message):
    capsys.readouterr()
    listed = "[" + ",".join(str(copies[name]) for name in members) + "]"
    assert main(["eval", f"run_dir={listed}", f"hydra.run.dir={tmp_path / 'eval'}"]) == EXIT_CONFIG
    assert message.format_map({name: copies[name] for name in copies}) in " ".join(capsys.readouterr().err.split())


def test_ner_runs_combine_token_by_token(tmp_path, copies):
    alone = evaluated(tmp_path, "alone", copies["ner"])["validation"]
    twice = evaluated(tmp_path, "twice", f"[{copies['ner']},{copies['ner-copy']}]")["validation"]
    assert {k: v for k, v in twice.items() if k != "loss"} == {k: v for k, v in alone.items() if k != "loss"}
