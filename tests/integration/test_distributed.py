"""Data-parallel training under `torchrun`, on 2 CPU processes (gloo).

Two processes of batch 4 train the same weights, to float tolerance, and score the same metrics as
one process of batch 4 accumulating 2 micro-batches (the same global batch); the run directory is
written once. A validation split of an odd size is scored whole: each row once. A training error
on rank 1 ends both processes promptly with its exit code and message, and a 2-process run killed
after a checkpoint resumes to where the uninterrupted one ends. A streamed training file is dealt
out the same way: two processes train what one accumulating two batches trains.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LAUNCHED = Path(__file__).with_name("launched.py")
STEPS = ["task=sentiment", "model=tiny_bert", "data.max_train_samples=96", "data.max_eval_samples=31",
         "trainer.max_steps=24", "trainer.eval_strategy=steps", "trainer.eval_steps=8", "trainer.logging_steps=4",
         "trainer.save_every=4", "trainer.group_by_length=false", "trainer.batch_size=4"]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1",
       "FTCLI_TEST_NO_DROPOUT": "1", "COLUMNS": "400"}


def launch(*args: str, env: dict[str, str] | None = None, **popen: object) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(LAUNCHED), *args]
    return subprocess.Popen(command, env={**ENV, **(env or {})}, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen)  # type: ignore[call-overload]


def finished(process: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def weights(run: Path) -> dict:
    return load_file(str(run / "model" / "model.safetensors"))


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def alone_and_by_two(overrides: list[str], root: Path) -> dict[str, Path]:
    """`ftcli train` by one process accumulating two micro-batches (`one`), and by two processes of
    one each (`two`), with what the launch printed (`output`)."""
    one, two = root / "one", root / "two"
    single = subprocess.run([sys.executable, str(LAUNCHED), "train", *overrides, "trainer.grad_accum_steps=2",
                             f"hydra.run.dir={one}"], env=ENV, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    code, output = finished(launch("train", *overrides, f"hydra.run.dir={two}"))
    assert code == 0, output
    return {"one": one, "two": two, "output": output}


def assert_same_weights(one: Path, two: Path) -> None:
    a, b = weights(one), weights(two)
    assert a.keys() == b.keys()
    for name in a:  # the processes sum in another order; Adam turns that into changes of about lr at most
        torch.testing.assert_close(a[name], b[name], rtol=1e-3, atol=1e-4, msg=name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    return alone_and_by_two(STEPS, tmp_path_factory.mktemp("distributed"))


def test_two_processes_train_what_one_process_trains_with_the_same_global_batch(runs):
    one, two = runs["one"], runs["two"]
    assert_same_weights(one, two)
    m1, m2 = metrics(one), metrics(two)
    assert m2["train"]["steps"] == m1["train"]["steps"] == 24
    for key, value in m1["validation"].items():
        if isinstance(value, float):
            assert m2["validation"][key] == pytest.approx(value, abs=1e-5), key
    assert runs["output"].count("final metrics") == 1  # one process reports
    assert len([line for line in (two / "train_log.jsonl").read_text().splitlines()]) == \
        len((one / "train_log.jsonl").read_text().splitlines())  # each record written once


def test_an_odd_validation_split_is_scored_once_per_row(runs):
    confusion = metrics(runs["two"])["validation"]["confusion_matrix"]
    assert sum(map(sum, confusion)) == 31
    assert confusion == metrics(runs["one"])["validation"]["confusion_matrix"]


def test_an_error_on_rank_1_ends_both_processes_with_its_exit_code_and_message(tmp_path):
    started = time.monotonic()
    process = launch("train", *STEPS, f"hydra.run.dir={tmp_path / 'run'}",
                     env={"FTCLI_TEST_FAIL_RANK": "1", "FTCLI_TEST_FAIL_STEP": "2"})
    code, output = finished(process, timeout=240)
    text = " ".join(output.split())
    assert code != 0
    assert "rank 1: training error" in text and "injected failure on rank 1 at step 2" in text
    assert "rank 0 stopped: rank 1 failed (exit 7): training error: injected failure" in text
    assert "rank : 1 (local_rank: 1) exitcode : 7" in text  # torchrun's summary of the rank that failed
    assert time.monotonic() - started < 200
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_killed_two_process_run_resumes_to_the_uninterrupted_result(runs, tmp_path):
    run = tmp_path / "killed"
    process = launch("train", *STEPS, f"hydra.run.dir={run}", env={"FTCLI_TEST_KILL_STEP": "10"})
    code, output = finished(process)
    assert code != 0 and "Signal 9 (SIGKILL) received" in output
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-4", "step-8"]
    assert not (run / "metrics.json").exists()
    code, output = finished(launch("train", *STEPS, "trainer.resume=auto", f"hydra.run.dir={run}"))
    assert code == 0, output
    a, b = weights(runs["two"]), weights(run)
    assert all((a[name] == b[name]).all() for name in a)  # bit-identical to the uninterrupted 2-process run
    assert metrics(run)["validation"] == metrics(runs["two"])["validation"]


def test_two_processes_stream_what_one_process_accumulating_two_batches_streams(tmp_path):
    sample = ROOT / "ftcli" / "samples" / "sentiment"
    streamed = ["task=sentiment", "model=tiny_bert", "data.streaming=true", f"data.train_file={sample / 'train.jsonl'}",
                f"data.validation_file={sample / 'validation.jsonl'}", "data.max_eval_samples=31", "trainer.max_steps=12",
                "trainer.batch_size=4", "trainer.eval_strategy=no", "trainer.save_every=null", "trainer.logging_steps=4"]
    trained = alone_and_by_two(streamed, tmp_path)
    one, two = trained["one"], trained["two"]
    assert metrics(two)["train"]["stream_rows"] == metrics(one)["train"]["stream_rows"] == 12 * 2 * 4
    assert_same_weights(one, two)
