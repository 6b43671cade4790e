"""`ftcli ilf` end to end on tiny Llama runs: a round writes one training row per prompt with where
each field came from, a killed round continues where it stopped, human feedback is matched by id
or by order, and runs, files and reruns that do not fit are refused."""

from __future__ import annotations

import gc
import json
import os
import signal
import weakref
from pathlib import Path

import pytest

from ftcli.cli.main import main
from ftcli.errors import EXIT_CONFIG, EXIT_DATA, EXIT_INTERRUPTED
from ftcli.runs import ilf_sources
from ftcli.tasks.feedback import FeedbackConfig

TINY = ["model=tiny_llama", "debug=smoke", "task.max_length=64", "task.generation.max_new_tokens=4",
        "trainer.eval_batch_size=16", "trainer.max_steps=2", "trainer.eval_strategy=steps", "trainer.eval_steps=2",
        "data.max_eval_samples=4"]
PROMPTS = [{"id": f"q{i}", "prompt": f"what is {i} + {i + 1}?"} for i in range(10)]
FIELDS = ("output", "feedback", "refinement")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def train(run_dir: Path, *overrides: str) -> Path:
    assert main(["train", *TINY, f"hydra.run.dir={run_dir}", *overrides]) == 0
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A policy (task=instruction on its bundled sample), a critique run that reads outputs from an
    `answer` column, and a refine run, each a few steps of a tiny Llama."""
    root = tmp_path_factory.mktemp("ilf-runs")
    sums = [(a, a + 1) for a in range(8)]
    rows = [{"prompt": f"what is {a} + {b}?", "answer": f"{a} + {b} = {a + b + 1}",
             "feedback": f"the sum is wrong: it is {a + b}.", "refinement": f"{a} + {b} = {a + b}"} for a, b in sums]
    critique = write_jsonl(root / "critique.jsonl", rows)
    refine = write_jsonl(root / "refine.jsonl", [{("output" if k == "answer" else k): v for k, v in row.items()}
                                                 for row in rows])
    return {
        "policy": train(root / "policy", "task=instruction"),
        "critique": train(root / "critique", "task=feedback", "task.objective=critique", "task.output_column=answer",
                          f"data.train_file={critique}", f"data.validation_file={critique}"),
        "refine": train(root / "refine", "task=feedback", "task.objective=refine",
                        f"data.train_file={refine}", f"data.validation_file={refine}"),
    }


def ilf(runs: dict[str, Path], source: Path, output: Path, *extra: str, policy: bool = True,
        critique: bool = True) -> int:
    """`ftcli ilf` on `source` into `output` with the tiny runs, 4 rows a chunk; `extra` overrides win."""
    given = {"input": str(source), "output": str(output), "refine_run": str(runs["refine"]), "chunk_size": "4",
             "hydra.run.dir": str(output.parent / (output.name + "-job")),
             **({"policy_run": str(runs["policy"])} if policy else {}),
             **({"critique_run": str(runs["critique"])} if critique else {})}
    given.update(word.split("=", 1) for word in extra)
    return main(["ilf", *(f"{key}={value}" for key, value in given.items())])


class Generations:
    """Counts each call of the generator by stage and rows; raises KeyboardInterrupt on the call `stop_at`."""

    def __init__(self, monkeypatch, stop_at: tuple[str, int] | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.stop_at = stop_at
        real = ilf_sources.row_predictions

        def counting(task, model, features, *args, **kwargs):
            cfg = task.cfg
            stage = cfg.objective.value if isinstance(cfg, FeedbackConfig) else "policy"
            self.calls.append((stage, len(features)))
            if self.stop_at and (stage, sum(s == stage for s, _ in self.calls)) == self.stop_at:
                raise KeyboardInterrupt
            return real(task, model, features, *args, **kwargs)

        monkeypatch.setattr(ilf_sources, "row_predictions", counting)


@pytest.fixture(scope="module")
def finished(runs, tmp_path_factory) -> Path:
    """A whole round on ten prompts, uninterrupted."""
    root = tmp_path_factory.mktemp("ilf-round")
    assert ilf(runs, write_jsonl(root / "prompts.jsonl", PROMPTS), root / "round") == 0
    return root / "round"


def test_a_round_writes_a_row_per_prompt_in_order_with_where_each_field_came_from(runs, finished):
    rows = read_jsonl(finished / "train.jsonl")
    assert [(row["id"], row["prompt"]) for row in rows] == [(p["id"], p["prompt"]) for p in PROMPTS]
    assert all(isinstance(row[name], str) for row in rows for name in FIELDS)
    sources = {name: str(runs[run].resolve()) for name, run in zip(FIELDS, ("policy", "critique", "refine"))}
    assert all(row[f"{name}_source"] == sources[name] for row in rows for name in FIELDS)
    for name in FIELDS:  # each stage's own file: one line per row, in order
        assert [(line["row"], line[name]) for line in read_jsonl(finished / f"{name}.jsonl")] == \
            [(i, row[name]) for i, row in enumerate(rows)]
    record = json.loads((finished / "round.json").read_text())
    assert record["status"] == "finished" and record["rows"] == 10 and record["resumed"] == []
    stages = record["stages"]
    assert (stages["output"]["task"], stages["output"]["objective"]) == ("instruction", None)
    assert [stages[name].get("objective") for name in ("feedback", "refinement")] == ["critique", "refine"]
    assert all(stages[name]["run_dir"] == sources[name] and stages[name]["model"] == "tiny:llama" for name in FIELDS)
    assert all(stages[name]["rows_from_source"] == 10 and stages[name]["rows_from_input"] == 0 for name in FIELDS)
    same = [i for i, row in enumerate(rows) if " ".join(row["refinement"].lower().split())
            == " ".join(row["output"].lower().split())]
    assert record["unfit"]["refinement_equal_to_output"] == {"count": len(same), "rows": same}
    assert record["started"] <= record["finished"]
    policy = finished.parent / "next-policy"  # the round's rows are what task=feedback imitates
    rows_file = finished / "train.jsonl"
    assert main(["train", *TINY, "task=feedback", "task.objective=imitate", f"data.train_file={rows_file}",
                 f"data.validation_file={rows_file}", f"hydra.run.dir={policy}"]) == 0


def test_the_round_loads_one_run_at_a_time(runs, tmp_path, monkeypatch):
    alive_at_load: list[int] = []
    models: list[weakref.ref] = []
    load = ilf_sources.load_trained

    def tracked(path):
        gc.collect()
        alive_at_load.append(sum(model() is not None for model in models))
        trained = load(path)
        models.append(weakref.ref(trained.model))
        return trained

    monkeypatch.setattr(ilf_sources, "load_trained", tracked)
    assert ilf(runs, write_jsonl(tmp_path / "prompts.jsonl", PROMPTS[:3]), tmp_path / "round") == 0
    assert alive_at_load == [0, 0, 0]


def test_a_killed_round_continues_where_it_stopped_and_writes_what_a_whole_one_does(
        runs, finished, tmp_path, monkeypatch):
    source, output = write_jsonl(tmp_path / "prompts.jsonl", PROMPTS), tmp_path / "round"
    first = Generations(monkeypatch, stop_at=("critique", 2))
    assert ilf(runs, source, output) == EXIT_INTERRUPTED
    assert first.calls == [("policy", 4), ("policy", 4), ("policy", 2), ("critique", 4), ("critique", 4)]
    assert len(read_jsonl(output / "feedback.jsonl")) == 4 and not (output / "train.jsonl").exists()
    with (output / "feedback.jsonl").open("a") as handle:
        handle.write('{"row": 4, "feedback": "half wri')  # a line the kill cut short
    again = Generations(monkeypatch)
    assert ilf(runs, source, output) == 0
    assert again.calls == [("critique", 4), ("critique", 2), ("refine", 4), ("refine", 4), ("refine", 2)]
    assert (output / "train.jsonl").read_text() == (finished / "train.jsonl").read_text()
    for name in FIELDS:
        assert (output / f"{name}.jsonl").read_text() == (finished / f"{name}.jsonl").read_text()
    record = json.loads((output / "round.json").read_text())
    assert len(record["resumed"]) == 1 and record["stages"]["feedback"]["rows_written_before"] == 4
    done = Generations(monkeypatch)
    assert ilf(runs, source, output) == 0  # finished: nothing to do
    assert done.calls == []


def test_sigterm_stops_the_round_once_its_chunk_is_written(runs, tmp_path, monkeypatch):
    real = ilf_sources.row_predictions

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler does, in the middle of a chunk
        return real(*args, **kwargs)

    monkeypatch.setattr(ilf_sources, "row_predictions", terminated)
    output = tmp_path / "round"
    assert ilf(runs, write_jsonl(tmp_path / "prompts.jsonl", PROMPTS), output) == EXIT_INTERRUPTED
    assert [line["row"] for line in read_jsonl(output / "output.jsonl")] == [0, 1, 2, 3]
    assert not (output / "feedback.jsonl").exists()


def test_human_feedback_is_matched_by_id_or_else_by_order(runs, tmp_path, monkeypatch):
    answered = [{**p, "output": f"{i} + {i + 1} = {2 * i}"} for i, p in enumerate(PROMPTS[:5])]
    source = write_jsonl(tmp_path / "answered.jsonl", answered)
    by_id = write_jsonl(tmp_path / "by_id.jsonl", [{"id": p["id"], "feedback": f"no: {p['id']}"}
                                                   for p in reversed(answered)])
    calls = Generations(monkeypatch)
    assert ilf(runs, source, tmp_path / "a", f"feedback_file={by_id}", policy=False, critique=False) == 0
    assert calls.calls == [("refine", 4), ("refine", 1)]  # no policy or critique model ran
    rows = read_jsonl(tmp_path / "a" / "train.jsonl")
    assert [row["feedback"] for row in rows] == [f"no: {p['id']}" for p in answered]
    assert [row["output"] for row in rows] == [p["output"] for p in answered]
    assert {row["output_source"] for row in rows} == {"input"}
    assert {row["feedback_source"] for row in rows} == {str(by_id.resolve())}
    record = json.loads((tmp_path / "a" / "round.json").read_text())
    assert record["stages"]["feedback"]["matched_by"] == "id" and record["stages"]["output"]["rows_from_input"] == 5

    by_order = write_jsonl(tmp_path / "by_order.jsonl", [{"prompt": p["prompt"], "feedback": f"wrong, {i}"}
                                                         for i, p in enumerate(answered)])
    assert ilf(runs, source, tmp_path / "b", f"feedback_file={by_order}", policy=False, critique=False) == 0
    assert [row["feedback"] for row in read_jsonl(tmp_path / "b" / "train.jsonl")] == [f"wrong, {i}" for i in range(5)]
    assert json.loads((tmp_path / "b" / "round.json").read_text())["stages"]["feedback"]["matched_by"] == "order"


@pytest.mark.parametrize(("feedback", "message"), [
    ([{"feedback": "no"}] * 4, "has 4 rows and input="),
    ([{"prompt": "what is 0 + 1?", "feedback": "no"}, {"prompt": "what is 7 + 7?", "feedback": "no"}]
     + [{"feedback": "no"}] * 3, "the row for input record 1 (matched by order) has another 'prompt'"),
    ([{"id": f"q{i}", "feedback": "no"} for i in (0, 1, 2, 4, 5)], "record 3 has id='q3', which no row of"),
    ([{"id": "q0", "feedback": "no"}, {"feedback": "no"}] * 2 + [{"id": "q4", "feedback": "no"}],
     "record 1 has id=None"),
])
def test_feedback_that_does_not_match_the_rows_is_refused(runs, tmp_path, capsys, feedback, message):
    source = write_jsonl(tmp_path / "in.jsonl", [{**p, "output": "?"} for p in PROMPTS[:5]])
    file = write_jsonl(tmp_path / "feedback.jsonl", feedback)
    assert ilf(runs, source, tmp_path / "round", f"feedback_file={file}", policy=False, critique=False) == EXIT_DATA
    assert message in capsys.readouterr().err
    assert not (tmp_path / "round").exists()


@pytest.mark.parametrize(("setting", "run", "message"), [
    ("policy_run", "refine", "is a task=feedback task.objective=refine run; policy_run needs a task=instruction run"),
    ("critique_run", "policy", "is a task=instruction run; critique_run needs a task=feedback run with "
     "task.objective=critique"),
    ("refine_run", "critique", "is a task=feedback task.objective=critique run; refine_run needs"),
])
def test_a_run_of_the_wrong_kind_is_refused_before_any_model_loads(runs, tmp_path, capsys, monkeypatch, setting, run,
                                                                   message):
    monkeypatch.setattr(ilf_sources, "load_trained", lambda path: pytest.fail("a model was loaded"))
    source = write_jsonl(tmp_path / "in.jsonl", PROMPTS[:2])
    assert ilf(runs, source, tmp_path / "round", f"{setting}={runs[run]}") == EXIT_CONFIG
    assert message in capsys.readouterr().err
    assert not (tmp_path / "round").exists()


def test_a_rerun_with_other_input_or_runs_is_refused(runs, finished, tmp_path, capsys):
    before = {path.name: path.read_bytes() for path in finished.iterdir()}
    other = write_jsonl(tmp_path / "other.jsonl", PROMPTS[:9])
    assert ilf(runs, other, finished) == EXIT_CONFIG
    assert "holds another round: this one has other input rows" in capsys.readouterr().err
    same = write_jsonl(tmp_path / "same.jsonl", PROMPTS)
    assert ilf(runs, same, finished, "max_new_tokens=2") == EXIT_CONFIG
    assert "max_new_tokens=2 (that one's: null)" in capsys.readouterr().err
    assert ilf(runs, same, finished, f"critique_run={runs['policy']}") == EXIT_CONFIG  # a wrong kind, checked first
    assert {path.name: path.read_bytes() for path in finished.iterdir()} == before


@pytest.mark.parametrize(("rows", "message"), [
    ([{"prompt": "a"}, {"question": "b"}], "record 1 has no 'prompt' column (it has: 'question')"),
    ([{"prompt": "a"}, {"prompt": "  "}], "record 1: the prompt is empty"),
    ([{"prompt": "a", "output": 3}], "record 0: 'output' is int, not text"),
])
def test_bad_input_rows_are_refused_naming_the_record(runs, tmp_path, capsys, rows, message):
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    assert ilf(runs, source, tmp_path / "round") == EXIT_DATA
    assert message in capsys.readouterr().err


def test_rows_without_feedback_need_a_source_of_it(runs, tmp_path, capsys):
    source = write_jsonl(tmp_path / "in.jsonl", PROMPTS[:2])
    assert ilf(runs, source, tmp_path / "round", critique=False) == EXIT_CONFIG
    assert "record 0 has no 'feedback', and no critique_run= or feedback_file= gives one" in capsys.readouterr().err
