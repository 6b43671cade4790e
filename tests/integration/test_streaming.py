"""`ftcli train` on streamed rows (`data.streaming=true`) and on a weighted mixture of files
(`data.mix`), on the tiny BERT. Hub streaming needs the network and is not tested here."""

from __future__ import annotations

import json

import pytest

from ftcli.cli.main import main
from tests.integration.conftest import ctrl_c_at_step
from tests.integration.test_resume import weights

WORDS = ["good", "bad", "great", "awful", "fine", "poor"]


def write_rows(path, n, prefix):
    rows = [{"text": f"{prefix} {WORDS[i % 6]} film {i}", "label": ["pos", "neg"][i % 2]} for i in range(n)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def streaming(tmp_path, run):
    train, dev = write_rows(tmp_path / "train.jsonl", 50, "t"), write_rows(tmp_path / "dev.jsonl", 8, "d")
    return ["train", "task=sentiment", "model=tiny_bert", "data.streaming=true", f"data.train_file={train}",
            f"data.validation_file={dev}", "data.shuffle_buffer=16", "trainer.max_steps=10", "trainer.batch_size=8",
            "trainer.eval_strategy=steps", "trainer.eval_steps=5", "trainer.save_every=4", f"hydra.run.dir={run}"]


def test_streaming_refuses_to_run_without_max_steps(tmp_path, capsys):
    args = [arg for arg in streaming(tmp_path, tmp_path / "run") if not arg.startswith("trainer.max_steps")]
    assert main(args) == 3  # a config error, before any model or data is loaded
    captured = capsys.readouterr()
    assert "data.streaming=true needs trainer.max_steps" in " ".join((captured.out + captured.err).split())
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_streamed_run_trains_and_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch):
    """10 steps of 8 rows from a 50-row file: two passes; stopped after step 4, resumed to the same end."""
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert main(streaming(tmp_path, whole)) == 0
    metrics = json.loads((whole / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 10 and metrics["train"]["stream_rows"] == 80
    assert set(metrics["validation"]) >= {"accuracy", "loss"}
    with ctrl_c_at_step(monkeypatch, 4):
        assert main(streaming(tmp_path, stopped)) == 130
    assert main([*streaming(tmp_path, stopped), "trainer.resume=auto"]) == 0
    assert json.loads((stopped / "metrics.json").read_text())["validation"] == metrics["validation"]
    a, b = weights(whole), weights(stopped)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_a_mixture_run_records_what_it_drew(tmp_path, capsys):
    a, b = write_rows(tmp_path / "a.jsonl", 60, "a"), write_rows(tmp_path / "b.jsonl", 20, "b")
    run = tmp_path / "run"
    mix = f"data.mix=[{{file: {a}, weight: 3}}, {{file: {b}, weight: 1}}]"
    assert main(["train", "task=sentiment", "model=tiny_bert", mix, "trainer.max_steps=2",
                 f"hydra.run.dir={run}"]) == 0
    record = json.loads((run / "data_mix.json").read_text())
    assert record["stopping"] == "first_exhausted" and record["streaming"] is False
    assert [(s["source"], s["weight"], s["rows_available"]) for s in record["sources"]] == [
        (str(a), 0.75, 60), (str(b), 0.25, 20)]
    drawn = [s["rows_drawn"] for s in record["sources"]]
    assert drawn[1] == 20 and 0 < drawn[0] < 60  # b ran out first and ended the mixture
    out = " ".join(capsys.readouterr().out.split())
    assert f"training mixture (first_exhausted): {a} 75% {drawn[0]}/60 rows" in out
    carved = round(sum(drawn) * 0.1)  # validation is held out of the mixture, as from one file
    assert f"validation: {carved} rows" in out
