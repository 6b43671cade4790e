"""Tests of the feature cache: hits give exactly the features encoding gives, any change to what they
depend on rebuilds them, damaged entries are rebuilt, and processes building at once stay safe."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from ftcli.cli.registered import to_typed
from ftcli.config.schema import DataConfig, TrainConfig
from ftcli.data.feature_store import DEFAULT_DIR, ENV, SUFFIX, cache_root
from ftcli.data.splits import load_splits
from ftcli.models.loading import build_tokenizer, load_config
from ftcli.runs import cached_features
from ftcli.runs.cached_features import FeatureCache, Use
from ftcli.tasks import TASKS
from ftcli.tasks.classification import ClassificationConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# every trainable task's bundled sample, on a model of the kind it trains (its tokenizer is what matters)
TASK_MODELS = {
    "sentiment": "tiny_bert", "text_classification": "tiny_bert", "pair_classification": "tiny_bert",
    "ner": "tiny_bert", "qa": "tiny_bert", "prompt_based": "tiny_bert", "reward_model": "tiny_bert",
    "summarization": "tiny_t5", "translation": "tiny_t5", "instruction": "tiny_gpt2", "preference": "tiny_gpt2",
    "kto": "tiny_gpt2", "grpo": "tiny_gpt2", "feedback": "tiny_gpt2",
}
ROWS = [{"text": "a fine film", "label": "positive"}, {"text": "a dull one", "label": "negative"}]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


def sample_run(name: str, cache_dir: Path):
    """What `ftcli train task=<name>` encodes: its bound task, its settings, its rows by split."""
    with initialize_config_dir(str(CONFIGS), version_base="1.3", job_name="test"):
        composed = compose(config_name="train", overrides=[f"task={name}", f"model={TASK_MODELS[name]}"])
    cfg = to_typed(composed, TrainConfig)
    data = replace(cfg.data, cache_dir=str(cache_dir))
    kind = TASKS.get(name).impl
    splits = load_splits(data, name, cfg.seed, training=True)
    labels = kind.label_names(splits, cfg.task, data)
    tokenizer = build_tokenizer(cfg.model)
    task_cfg = cfg.task.for_model(load_config(cfg.model))
    task = kind.bind(task_cfg, data, labels, tokenizer)
    return lambda: FeatureCache(task, name, task_cfg, data, labels, tokenizer), splits


def sentiment(tokenizer, cache_dir: Path, cfg: ClassificationConfig | None = None, labels=("negative", "positive"),
              data: DataConfig | None = None, name: str = "sentiment") -> FeatureCache:
    cfg = cfg or ClassificationConfig(name=name)
    data = data or DataConfig(cache_dir=str(cache_dir))
    task = TASKS.get(name).impl.bind(cfg, data, list(labels), tokenizer)
    return FeatureCache(task, name, cfg, data, list(labels), tokenizer)


@pytest.mark.parametrize("name", sorted(TASK_MODELS))
def test_a_hit_gives_the_features_encoding_gives(registered_configs, tmp_path, name):
    new_cache, splits = sample_run(name, tmp_path)
    cache = new_cache()
    built = cache.encode_splits(splits.rows, splits.sources)  # what `Task.encode` returned
    assert {use for use, _ in cache.uses.values()} == {Use.built}
    again = new_cache()  # as in the next process: the settings' digest and every entry read anew
    hit = again.encode_splits(splits.rows, splits.sources)
    assert {use for use, _ in again.uses.values()} == {Use.hit}
    assert hit == built
    assert [type(feature[key]) for feature in hit["train"] for key in feature] == \
        [type(feature[key]) for feature in built["train"] for key in feature]


def test_the_status_line_and_record_say_where_features_came_from(tokenizer, tmp_path, capsys):
    cache = sentiment(tokenizer, tmp_path)
    cache.encode_splits({"train": ROWS}, {"train": "f.jsonl"})
    again = sentiment(tokenizer, tmp_path)
    again.encode_splits({"train": ROWS, "validation": ROWS[:1]}, {"train": "f.jsonl", "validation": "g.jsonl"})
    key = again.uses["train"][1]
    assert f"feature cache ({tmp_path}): train hit {key[:8]}, validation built " in capsys.readouterr().out
    assert again.record() == {"train": "hit", "validation": "built"}
    assert sorted(p.name for p in tmp_path.glob(f"*{SUFFIX}")) == sorted(
        f"{k}{SUFFIX}" for _, k in again.uses.values())


def test_a_change_to_the_tokenizer_rebuilds_and_gives_its_own_features(tokenizer, tmp_path):
    from transformers import AutoTokenizer

    sentiment(tokenizer, tmp_path).encode("train", ROWS, "f.jsonl")
    other = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    other.add_tokens(["dull one"])  # one more token: "a dull one" encodes otherwise
    cache = sentiment(other, tmp_path)
    features = cache.encode("train", ROWS, "f.jsonl")
    assert cache.uses["train"][0] is Use.built
    assert features == cache.task.encode(ROWS, "f.jsonl")
    assert features[1]["input_ids"] != sentiment(tokenizer, tmp_path).encode("train", ROWS, "f.jsonl")[1]["input_ids"]


def changed_tokenizers(tokenizer):
    """Tokenizers that differ from `tokenizer` in one way each, by name."""
    import copy

    from transformers import AutoTokenizer

    def changed(change):
        other = copy.deepcopy(tokenizer)
        change(other)
        return other

    yield "vocabulary", changed(lambda t: t.add_tokens(["zyxwv"]))
    yield "special token", changed(lambda t: t.add_special_tokens({"pad_token": "[UNK]"}))
    yield "padding side", changed(lambda t: setattr(t, "padding_side", "left"))
    yield "truncation side", changed(lambda t: setattr(t, "truncation_side", "left"))
    yield "chat template", changed(lambda t: setattr(t, "chat_template", "{{ messages }}"))
    yield "model max length", changed(lambda t: setattr(t, "model_max_length", 64))
    yield "post-processor", changed(lambda t: setattr(t.backend_tokenizer, "post_processor", None))
    yield "init setting", AutoTokenizer.from_pretrained(tokenizer.name_or_path, do_lower_case=False)


def test_every_part_of_the_key_changes_it(tokenizer, tmp_path, monkeypatch):
    def key(cache: FeatureCache, rows=ROWS, source="f.jsonl", with_labels=True) -> str:
        return cache.key(rows, source, with_labels)

    base = key(sentiment(tokenizer, tmp_path))
    assert key(sentiment(tokenizer, tmp_path)) == base
    keys = {
        "a row's text": key(sentiment(tokenizer, tmp_path), [ROWS[0], {**ROWS[1], "text": "a dull one."}]),
        "a row's label": key(sentiment(tokenizer, tmp_path), [ROWS[0], {**ROWS[1], "label": "positive"}]),
        "a row's extra column": key(sentiment(tokenizer, tmp_path), [ROWS[0], {**ROWS[1], "id": 7}]),
        "row order": key(sentiment(tokenizer, tmp_path), ROWS[::-1]),
        "a row more": key(sentiment(tokenizer, tmp_path), ROWS + ROWS[:1]),
        "source": key(sentiment(tokenizer, tmp_path), source="g.jsonl"),
        "labels read": key(sentiment(tokenizer, tmp_path), with_labels=False),
        "task.max_length": key(sentiment(tokenizer, tmp_path, ClassificationConfig(name="sentiment", max_length=7))),
        "label order": key(sentiment(tokenizer, tmp_path, labels=("positive", "negative"))),
        "data.text_column": key(sentiment(tokenizer, tmp_path, data=DataConfig(text_column="body"))),
        "data.label_names": key(sentiment(tokenizer, tmp_path,
                                          data=DataConfig(label_names=["negative", "positive"]))),
        "task kind": key(sentiment(tokenizer, tmp_path, name="text_classification")),
    }
    for change, other in changed_tokenizers(tokenizer):
        keys[f"tokenizer {change}"] = key(sentiment(other, tmp_path))
    monkeypatch.setattr("ftcli.__version__", "0.0.0-other")
    keys["ftcli version"] = key(sentiment(tokenizer, tmp_path))
    monkeypatch.undo()
    monkeypatch.setattr(cached_features, "_source_digest", lambda: "edited source")
    keys["ftcli source"] = key(sentiment(tokenizer, tmp_path))
    assert key(sentiment(tokenizer, tmp_path), [{**ROWS[0], "x": (1,)}]) != \
        key(sentiment(tokenizer, tmp_path), [{**ROWS[0], "x": [1]}])
    unchanged = [change for change, other in keys.items() if other == base]
    assert not unchanged, f"the key does not change with: {unchanged}"
    assert len(set(keys.values())) == len(keys)


def test_the_model_facts_a_task_config_takes_are_in_the_key(tokenizer, tmp_path):
    from ftcli.tasks.prompt_based import PromptBasedConfig

    kind = TASKS.get("prompt_based").impl
    keys = []
    for model in ("tiny:bert", "tiny:gpt2"):
        from ftcli.config.schema import ModelConfig

        cfg = PromptBasedConfig(name="prompt_based").for_model(load_config(ModelConfig(model)))
        data = DataConfig(cache_dir=str(tmp_path))
        task = kind.bind(cfg, data, ["negative", "positive"], tokenizer)
        keys.append(FeatureCache(task, "prompt_based", cfg, data, ["negative", "positive"], tokenizer)
                    .key(ROWS, "f.jsonl", True))
    assert keys[0] != keys[1]


def test_what_changes_no_feature_keeps_the_key(tokenizer, tmp_path):
    base = sentiment(tokenizer, tmp_path).key(ROWS, "f.jsonl", True)
    elsewhere = sentiment(tokenizer, tmp_path, data=DataConfig(cache_dir=str(tmp_path / "other")))
    tokenizer(["a call that leaves its truncation settings in the backend"], truncation=True, max_length=3,
              padding="max_length")
    saved = tmp_path / "saved"
    tokenizer.save_pretrained(saved)
    from ftcli.runs.trained import saved_tokenizer

    reloaded = sentiment(saved_tokenizer(saved), tmp_path)  # what eval and predict read back from a run
    assert elsewhere.key(ROWS, "f.jsonl", True) == base
    assert sentiment(tokenizer, tmp_path).key(ROWS, "f.jsonl", True) == base
    assert reloaded.key(ROWS, "f.jsonl", True) == base


@pytest.mark.parametrize("damage", ["cut short", "flipped byte", "empty", "not an entry", "another key"])
def test_a_damaged_entry_is_rebuilt_not_served(tokenizer, tmp_path, caplog, damage):
    cache = sentiment(tokenizer, tmp_path)
    expected = cache.encode("train", ROWS, "f.jsonl")
    key = cache.uses["train"][1]
    path = tmp_path / f"{key}{SUFFIX}"
    data = path.read_bytes()
    damaged = {
        "cut short": data[: len(data) - 5],
        "flipped byte": data[:-3] + bytes([data[-3] ^ 1]) + data[-2:],
        "empty": b"",
        "not an entry": b"{}\n" + data,
        "another key": data.replace(key.encode(), b"0" * len(key), 1),
    }[damage]
    path.write_bytes(damaged)
    again = sentiment(tokenizer, tmp_path)
    with caplog.at_level(logging.WARNING, logger="ftcli"):
        features = again.encode("train", ROWS, "f.jsonl")
    assert again.uses["train"][0] is Use.built and features == expected
    assert caplog.text.count("is damaged") == 1 and "encoding again" in caplog.text
    third = sentiment(tokenizer, tmp_path)
    assert third.encode("train", ROWS, "f.jsonl") == expected and third.uses["train"][0] is Use.hit


def test_what_encoding_warned_about_is_said_again_on_a_hit(registered_configs, tmp_path, caplog):
    new_cache, _ = sample_run("instruction", tmp_path)
    rows = [{"instruction": "say " + "very " * 1100 + "much", "output": "ok"}]
    for use in (Use.built, Use.hit):
        caplog.clear()
        cache = new_cache()
        with caplog.at_level(logging.WARNING, logger="ftcli"):
            cache.encode("train", rows, "long.jsonl")
        assert cache.uses["train"][0] is use
        assert caplog.text.count("1 of 1 rows are longer than task.max_length") == 1, use


def test_rows_the_key_cannot_hold_exactly_are_encoded_and_not_cached(tokenizer, tmp_path):
    import numpy as np

    rows = [{**row, "score": np.float32(0.5)} for row in ROWS]  # as a parquet file's float column could come
    cache = sentiment(tokenizer, tmp_path)
    features = cache.encode("train", rows, "f.parquet")
    assert cache.uses["train"][0] is Use.uncached and features == cache.task.encode(rows, "f.parquet")
    assert not list(tmp_path.glob(f"*{SUFFIX}"))


def test_the_cache_can_be_turned_off(tokenizer, tmp_path, capsys):
    cache = sentiment(tokenizer, tmp_path, data=DataConfig(cache=False, cache_dir=str(tmp_path)))
    cache.encode_splits({"train": ROWS}, {"train": "f.jsonl"})
    assert cache.record() == {"train": "off"} and not list(tmp_path.iterdir())
    assert "feature cache" not in capsys.readouterr().out


def test_a_folder_that_cannot_be_written_turns_the_cache_off_with_a_warning(tokenizer, tmp_path, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    cache = sentiment(tokenizer, tmp_path, data=DataConfig(cache_dir=str(blocker / "features")))
    features = cache.encode("train", ROWS, "f.jsonl")
    assert features == cache.task.encode(ROWS, "f.jsonl") and cache.record() == {"train": "off"}
    assert "cannot be written" in capsys.readouterr().out


def test_the_folder_is_the_setting_then_the_environment_then_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, str(tmp_path / "env"))
    assert cache_root(str(tmp_path / "set")) == tmp_path / "set"
    assert cache_root(None) == tmp_path / "env"
    monkeypatch.delenv(ENV)
    assert cache_root(None) == Path(DEFAULT_DIR).expanduser()


def test_the_suite_keeps_its_cache_out_of_the_home_folder():
    assert Path(os.environ[ENV]).resolve() != Path(DEFAULT_DIR).expanduser().resolve()
    assert not Path(os.environ[ENV]).resolve().is_relative_to(Path.home() / ".cache")


BUILDER = """
import json, sys, time
from pathlib import Path
from transformers import AutoTokenizer
from ftcli.config.schema import DataConfig
from ftcli.models.sources import embedded_tokenizer_path
from ftcli.runs.cached_features import FeatureCache
from ftcli.tasks import TASKS
from ftcli.tasks.classification import ClassificationConfig

folder, ready, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
rows = [{"text": f"row {i} of a film that is {'fine' if i % 2 else 'dull'}", "label": "fine" if i % 2 else "dull"}
        for i in range(3000)]
cfg, data, labels = ClassificationConfig(name="sentiment"), DataConfig(cache_dir=str(folder)), ["dull", "fine"]
tokenizer = AutoTokenizer.from_pretrained(embedded_tokenizer_path())
task = TASKS.get("sentiment").impl.bind(cfg, data, labels, tokenizer)
cache = FeatureCache(task, "sentiment", cfg, data, labels, tokenizer)
ready.touch()
while not go.exists():
    time.sleep(0.01)
features = cache.encode("train", rows, "rows")
assert features == task.encode(rows, "rows")
print(json.dumps(cache.record()))
"""


@pytest.mark.slow  # two fresh processes importing transformers: about 10 s on two cores
def test_two_processes_building_one_entry_at_once_build_it_once(tmp_path):
    ready, go = [tmp_path / "ready-0", tmp_path / "ready-1"], tmp_path / "go"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    builders = [subprocess.Popen([sys.executable, "-c", BUILDER, str(tmp_path / "cache"), str(flag), str(go)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for flag in ready]
    while not all(flag.exists() for flag in ready) and all(b.poll() is None for b in builders):
        time.sleep(0.01)
    go.touch()  # both start building together: each finds no entry, one takes the lock, the other waits
    outputs = [builder.communicate(timeout=120) for builder in builders]
    assert [builder.returncode for builder in builders] == [0, 0], [err[-2000:] for _, err in outputs]
    uses = sorted(json.loads(out.splitlines()[-1])["train"] for out, _ in outputs)
    assert uses == ["built", "hit"]
    left = sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock"))
    assert len(left) == 1 and left[0].endswith(SUFFIX)  # no temporary file left behind
