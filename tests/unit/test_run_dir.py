"""Tests of ftcli.runs.directory: readiness checks of a run directory and its atomic file and folder writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ftcli.config.schema import ModelConfig, TrainConfig, TrainerConfig
from ftcli.errors import RunDirError
from ftcli.files import staged_dir, write_text_atomic
from ftcli.methods.lora import LoraConfig
from ftcli.runs.directory import RunDir, read_config, write_config
from ftcli.runs.refusal import DirState, leave_as_found
from ftcli.tasks.classification import ClassificationConfig


def finished_run(path, artifact="model"):
    path.mkdir(exist_ok=True)
    for name in ("config.yaml", "labels.json", "metrics.json"):
        (path / name).write_text("{}", encoding="utf-8")
    (path / artifact).mkdir()
    return RunDir(path)


def test_ensure_readable_missing_dir(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(RunDirError) as info:
        RunDir(missing).ensure_readable()
    assert info.value.message == f"run_dir={missing}: no such directory"
    assert info.value.hint == "pass the folder `ftcli train` printed"


def test_ensure_readable_empty_dir_lists_everything_missing(tmp_path):
    with pytest.raises(RunDirError) as info:
        RunDir(tmp_path).ensure_readable()
    assert info.value.message == (
        f"run_dir={tmp_path} is not a finished ftcli run: missing config.yaml, labels.json, model/ or adapter/"
    )


def test_ensure_readable_without_artifact(tmp_path):
    (tmp_path / "config.yaml").write_text("x", encoding="utf-8")
    (tmp_path / "labels.json").write_text("x", encoding="utf-8")
    with pytest.raises(RunDirError, match=r"is not a finished ftcli run: missing model/ or adapter/$"):
        RunDir(tmp_path).ensure_readable()


def test_ensure_readable_artifact_must_be_a_folder(tmp_path):
    run = finished_run(tmp_path / "run")
    (run.path / "model").rmdir()
    (run.path / "model").write_text("not a folder", encoding="utf-8")
    with pytest.raises(RunDirError, match="missing model/ or adapter/"):
        run.ensure_readable()


@pytest.mark.parametrize("artifact", ["model", "adapter"])
def test_ensure_readable_finished_run(tmp_path, artifact):
    run = finished_run(tmp_path / "run", artifact)
    run.ensure_readable()
    assert run.artifact() == tmp_path / "run" / artifact


def test_ensure_trainable_refuses_finished_run_unless_overwrite(tmp_path):
    run = finished_run(tmp_path / "run")
    with pytest.raises(RunDirError, match="already holds a finished run") as info:
        run.ensure_trainable(overwrite=False)
    assert "overwrite=true" in info.value.hint
    run.ensure_trainable(overwrite=True)


def test_ensure_trainable_accepts_unfinished_or_new_run(tmp_path):
    RunDir(tmp_path / "new").ensure_trainable(overwrite=False)
    partial = finished_run(tmp_path / "partial")
    (partial.path / "metrics.json").unlink()
    assert not partial.is_finished()
    partial.ensure_trainable(overwrite=False)


def test_write_text_atomic_writes_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text(encoding="utf-8") == "two"
    assert os.listdir(target.parent) == ["f.txt"]


def test_write_text_atomic_gives_normal_permissions(tmp_path):
    target = tmp_path / "f.txt"
    write_text_atomic(target, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_write_text_atomic_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    target.write_text("old", encoding="utf-8")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_json_round_trip(tmp_path):
    run = RunDir(tmp_path)
    run.write_json("labels.json", {"labels": ["négatif", "positif"]})
    assert run.read_json("labels.json") == {"labels": ["négatif", "positif"]}
    assert "négatif" in (tmp_path / "labels.json").read_text(encoding="utf-8")


def test_read_json_errors_are_run_dir_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(RunDirError, match="bad.json could not be read"):
        RunDir(tmp_path).read_json("bad.json")
    with pytest.raises(RunDirError, match="missing.json could not be read"):
        RunDir(tmp_path).read_json("missing.json")


def test_append_log_writes_jsonl(tmp_path):
    run = RunDir(tmp_path)
    run.append_log({"step": 1})
    run.append_log({"step": 2, "loss": 0.5})
    assert run.log_file.read_text(encoding="utf-8") == '{"step": 1}\n{"step": 2, "loss": 0.5}\n'


def test_staged_dir_replaces_existing_folder(tmp_path):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.bin").write_text("old", encoding="utf-8")
    with staged_dir(final) as tmp:
        assert tmp.parent == tmp_path and tmp != final
        (tmp / "new.bin").write_text("new", encoding="utf-8")
    assert os.listdir(final) == ["new.bin"]
    assert os.listdir(tmp_path) == ["model"]


def test_staged_dir_keeps_old_folder_when_block_fails(tmp_path):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.bin").write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="boom"):
        with staged_dir(final) as tmp:
            (tmp / "half.bin").write_text("half", encoding="utf-8")
            raise RuntimeError("boom")
    assert os.listdir(final) == ["old.bin"]
    assert (final / "old.bin").read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["model"]


@pytest.fixture(params=[(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)], ids=["umask022", "umask077"])
def umask(request):
    """Runs the test under a umask; gives the modes a plain open() and mkdir() make under it."""
    mask, file_mode, dir_mode = request.param
    before = os.umask(mask)
    yield file_mode, dir_mode
    os.umask(before)


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_write_text_atomic_follows_the_umask(tmp_path, umask):
    file_mode, _ = umask
    write_text_atomic(tmp_path / "f.txt", "x")
    assert mode(tmp_path / "f.txt") == file_mode


def test_staged_dir_gives_what_it_holds_the_umask_modes(tmp_path, umask):
    """Temporary files renamed into place (as safetensors writes them) and mkdtemp folders keep
    0600 and 0700; the swapped-in folder gets the modes a plain open() and mkdir() give."""
    import tempfile

    file_mode, dir_mode = umask
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours", encoding="utf-8")
    outside.chmod(0o600)
    with staged_dir(tmp_path / "model") as tmp:
        fd, name = tempfile.mkstemp(dir=tmp)
        os.close(fd)
        os.replace(name, tmp / "weights.safetensors")
        sub = Path(tempfile.mkdtemp(dir=tmp))
        fd, _ = tempfile.mkstemp(dir=sub)
        os.close(fd)
        (tmp / "link").symlink_to(outside)
    final = tmp_path / "model"
    assert mode(final) == dir_mode
    for root, dirs, files in os.walk(final):
        assert all(mode(Path(root) / d) == dir_mode for d in dirs)
        assert all(mode(Path(root) / f) == file_mode for f in files if f != "link")
    assert mode(outside) == 0o600  # a link in the folder is not followed


def test_staged_dir_failure_without_existing_folder_creates_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_dir(tmp_path / "adapter"):
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_save_artifact(tmp_path):
    run = RunDir(tmp_path)
    path = run.save_artifact("adapter", lambda folder: (folder / "w.bin").write_bytes(b"w"))
    assert path == tmp_path / "adapter"
    assert (path / "w.bin").read_bytes() == b"w"
    assert run.artifact() == path


def test_config_round_trip(tmp_path):
    cfg = TrainConfig(
        model=ModelConfig(name_or_path="tiny:bert"),
        task=ClassificationConfig(name="sentiment", max_length=64),
        method=LoraConfig(rank=4, target_modules=["query"]),
        trainer=TrainerConfig(lr=1e-4),
    )
    run = RunDir(tmp_path)
    write_config(run, cfg)
    assert read_config(run) == cfg


def test_read_config_unknown_method(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "model: {name_or_path: x}\ntask: {name: sentiment}\nmethod: {name: lorra}\n", encoding="utf-8"
    )
    with pytest.raises(RunDirError, match=r"is not a valid ftcli training config: unknown method 'lorra'"):
        read_config(RunDir(tmp_path))


@pytest.mark.parametrize(
    ("config", "environment", "hint"),
    [
        ("method: {name: lora}\n", None, "it may come from an incompatible ftcli version"),
        ("task: [sentiment]\nmethod: {name: lora}\n", '{"ftcli": "0.0.1"}', "written by ftcli 0.0.1 and this is ftcli"),
        ("- a list\n", '{"ftcli": "%s"}', "written by this ftcli version"),
    ],
)
def test_read_config_says_which_version_wrote_the_run(tmp_path, config, environment, hint):
    from ftcli import __version__

    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    if environment is not None:
        (tmp_path / "environment.json").write_text(environment.replace("%s", __version__), encoding="utf-8")
    with pytest.raises(RunDirError, match="is not a valid ftcli training config") as caught:
        read_config(RunDir(tmp_path))
    assert hint in caught.value.hint


def refused_train(path):
    """What Hydra and `train` write before `train` refuses: Hydra's record, the log, the environment."""
    (path / ".hydra").mkdir(parents=True, exist_ok=True)
    (path / ".hydra" / "overrides.yaml").write_text("- the refused command\n", encoding="utf-8")
    (path / "train.log").write_text("", encoding="utf-8")
    (path / "environment.json").write_text("{}", encoding="utf-8")


def test_leave_as_found_puts_back_a_finished_run(tmp_path):
    run = finished_run(tmp_path / "run")
    (run.path / ".hydra").mkdir()
    (run.path / ".hydra" / "overrides.yaml").write_text("- the command that made it\n", encoding="utf-8")
    (run.path / "train_log.jsonl").write_text('{"step": 1}\n', encoding="utf-8")
    before = DirState.capture(run.path)
    refused_train(run.path)
    (run.path / "train_log.jsonl").unlink()
    leave_as_found(run.path, before, "train.log")
    assert DirState.capture(run.path).files == before.files
    assert sorted(p.name for p in run.path.iterdir()) == [
        ".hydra", "config.yaml", "labels.json", "metrics.json", "model", "train_log.jsonl",
    ]


def test_leave_as_found_keeps_an_attempt_that_wrote_a_checkpoint(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "step-1").mkdir(parents=True)
    before = DirState.capture(run)
    refused_train(run)
    (run / "checkpoints" / "step-2").mkdir()
    leave_as_found(run, before, "train.log")
    assert (run / ".hydra" / "overrides.yaml").is_file() and (run / "environment.json").is_file()


def test_leave_as_found_removes_only_the_attempts_own_debris(tmp_path):
    made, used = tmp_path / "made", tmp_path / "used"
    refused_train(made)
    leave_as_found(made, DirState.capture(tmp_path / "not-there"), "train.log")
    assert not made.exists()
    refused_train(used)
    (used / "notes.txt").write_text("mine", encoding="utf-8")  # not something a refused train writes
    leave_as_found(used, None, "train.log")
    assert (used / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_leave_as_found_in_a_folder_without_a_run_removes_only_what_was_added(tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    before = DirState.capture(tmp_path)
    refused_train(tmp_path)
    leave_as_found(tmp_path, before, "train.log")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
