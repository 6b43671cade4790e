"""Meta-learning's parts: one Reptile and one FOMAML outer step equal their closed forms computed by
running the inner steps by hand; the prototype head is the nearest class mean; episodes are seeded
and hold exactly `shots` and `queries` rows of each of `ways` classes; bad settings and datasets
too small for an episode are refused with what to change."""

from __future__ import annotations

import copy
from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForSequenceClassification

from ftcli.config.meta import MetaAlgorithm, MetaConfig
from ftcli.config.schema import ModelConfig
from ftcli.data.episodes import Episode, EpisodeSampler, TaskRows
from ftcli.engine.meta import EpisodeBatch, InnerLoop, adaptation, meta_step, prototype_head, without_last_layer
from ftcli.errors import DataError, ModelError
from ftcli.methods import head_modules
from ftcli.models import sources
from ftcli.models.loading import build_model, build_tokenizer
from ftcli.runs import directory
from ftcli.runs.meta_training import short_names

SUPPORT = (["red blue red", "blue green red", "green red blue"], ["cat dog cow", "dog cow cat", "cow cat dog"])
QUERY = (["blue red green", "red red blue"], ["dog dog cat", "cat cow dog"])


def encoder():
    """The tiny BERT classifier less its last head layer, without dropout so a hand-run pass is the same pass."""
    model = build_model(ModelConfig("tiny:bert"), AutoModelForSequenceClassification, ["0", "1"],
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.3)
    return without_last_layer(model, head_modules(model)).train()


def batch(texts_by_class):
    tokenizer = build_tokenizer(ModelConfig("tiny:bert"))
    texts = [text for texts in texts_by_class for text in texts]
    encoded = dict(tokenizer(texts, padding=True, return_tensors="pt"))
    labels = [label for label, texts in enumerate(texts_by_class) for _ in texts]
    return {**encoded, "labels": torch.tensor(labels)}


def inputs(part):
    return {k: v for k, v in part.items() if k != "labels"}


def hand_adapted(model, episode, steps, lr):
    """θ' and the adapted head, by torch's SGD on a copy, from class means taken row by row."""
    adapted = copy.deepcopy(model)
    support = episode.support
    with torch.no_grad():
        pooled = adapted(**inputs(support)).logits
    means = []
    for c in range(episode.ways):
        rows = [pooled[i] for i in range(len(pooled)) if support["labels"][i] == c]
        means.append(sum(rows) / len(rows))
    means = torch.stack(means)
    head = nn.Linear(means.shape[1], episode.ways)
    head.weight.data, head.bias.data = 2 * means, -(means * means).sum(1)
    optimizer = torch.optim.SGD([*adapted.parameters(), *head.parameters()], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(head(adapted(**inputs(support)).logits), support["labels"]).backward()
        optimizer.step()
    return adapted, head


def check_moved_to(model, before, expected):
    moved = 0.0
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=1e-5, atol=1e-7, msg=name)
        moved = max(moved, float((param.detach() - before[name]).abs().max()))
    assert moved > 1e-2  # the step is large enough for the comparison to mean something


def outer_step(algorithm, step_size, expected_step):
    """One `meta_step` of `algorithm` (2 inner steps of lr 0.5), checked against the weights it should
    reach, `expected_step(θ, θ', head, episode)`."""
    model, episode = encoder(), EpisodeBatch(batch(SUPPORT), batch(QUERY), 2)
    theta = {n: p.detach().clone() for n, p in model.named_parameters()}
    adapted, head = hand_adapted(model, episode, steps=2, lr=0.5)
    expected = expected_step(theta, adapted, head, episode)
    optimizer = torch.optim.SGD(model.parameters(), lr=step_size)
    meta_step(model, episode, InnerLoop(algorithm, 2, 0.5), optimizer, nullcontext)
    check_moved_to(model, theta, expected)


def test_one_reptile_step_moves_the_weights_a_fraction_of_the_way_to_the_adapted_ones():
    epsilon = 0.3

    def reptile(theta, adapted, head, episode):
        theta_prime = dict(adapted.named_parameters())
        return {n: theta[n] + epsilon * (theta_prime[n].detach() - theta[n]) for n in theta}

    outer_step(MetaAlgorithm.reptile, epsilon, reptile)


def test_one_fomaml_step_follows_the_query_gradient_at_the_adapted_weights():
    beta = 2.0

    def fomaml(theta, adapted, head, episode):
        names, params = zip(*adapted.named_parameters())
        query_loss = F.cross_entropy(head(adapted(**inputs(episode.query)).logits), episode.query["labels"])
        grads = torch.autograd.grad(query_loss, params, allow_unused=True)
        return {n: theta[n] - beta * (g if g is not None else torch.zeros_like(theta[n])) for n, g in zip(names, grads)}

    outer_step(MetaAlgorithm.fomaml, beta, fomaml)


def test_measuring_an_adaptation_leaves_the_weights_as_they_were():
    model, episode = encoder(), EpisodeBatch(batch(SUPPORT), batch(QUERY), 2)
    theta = {n: p.detach().clone() for n, p in model.named_parameters()}
    figures = adaptation(model, episode, InnerLoop(MetaAlgorithm.reptile, 2, 0.5), nullcontext)
    assert all(torch.equal(p, theta[n]) for n, p in model.named_parameters())
    assert figures.accuracy_before in (0.0, 0.25, 0.5, 0.75, 1.0)  # 4 query rows


def test_the_prototype_head_scores_by_distance_to_the_class_means():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(12, 5, generator=generator)
    labels = torch.tensor([0, 1, 2] * 4)
    head = prototype_head(features, labels, 3)
    means = torch.stack([features[i::3].mean(0) for i in range(3)])
    queries = torch.randn(7, 5, generator=generator)
    expected = (queries**2).sum(1, keepdim=True) - torch.cdist(queries, means) ** 2
    with torch.no_grad():
        torch.testing.assert_close(head(queries), expected, rtol=1e-4, atol=1e-4)
        assert torch.equal(head(queries).argmax(1), torch.cdist(queries, means).argmin(1))


def test_the_last_linear_layer_of_the_head_gives_way_to_the_pooled_features():
    model = build_model(ModelConfig("tiny:bert"), AutoModelForSequenceClassification, ["0", "1"])
    without_last_layer(model, head_modules(model))
    assert isinstance(model.classifier, nn.Identity)
    assert model(**inputs(batch(SUPPORT))).logits.shape == (6, model.config.hidden_size)
    with pytest.raises(ModelError, match="has no linear layer"):
        without_last_layer(model, head_modules(model))


TASKS = [
    TaskRows("three.jsonl", ["a", "b", "c"], [0, 1, 2] * 10),
    TaskRows("two.jsonl", ["x", "y"], [0, 1] * 6 + [1] * 4),
]


def test_episodes_are_seeded_and_hold_exactly_shots_and_queries_rows_of_each_class():
    sampler = EpisodeSampler(TASKS, ways=2, shots=3, queries=2, seed=7)
    episodes = [sampler.train_episode(i) for i in range(40)]
    assert episodes == [EpisodeSampler(TASKS, 2, 3, 2, seed=7).train_episode(i) for i in range(40)]
    assert episodes != [EpisodeSampler(TASKS, 2, 3, 2, seed=8).train_episode(i) for i in range(40)]
    assert {episode.task for episode in episodes} == {0, 1}
    for episode in episodes:
        targets = TASKS[episode.task].targets
        assert len(set(episode.classes)) == 2
        for c, support, query in zip(episode.classes, episode.support, episode.query):
            assert len(support) == 3 and len(query) == 2
            assert len(set(support + query)) == 5 and {targets[row] for row in support + query} == {c}
        rows, labels = Episode.labelled(episode.support)
        assert labels == [0, 0, 0, 1, 1, 1] and [targets[row] for row in rows] == [episode.classes[i] for i in labels]


def test_without_ways_an_episode_holds_every_class_and_evaluation_goes_round_the_datasets():
    sampler = EpisodeSampler(TASKS, ways=None, shots=2, queries=1, seed=0)
    episodes = [sampler.eval_episode(i) for i in range(4)]
    assert [episode.task for episode in episodes] == [0, 1, 0, 1]
    assert [sorted(episode.classes) for episode in episodes] == [[0, 1, 2], [0, 1], [0, 1, 2], [0, 1]]
    assert episodes == [sampler.eval_episode(i) for i in range(4)]


def test_a_class_short_of_rows_is_named_with_its_count():
    with pytest.raises(DataError) as error:
        EpisodeSampler(TASKS, ways=None, shots=4, queries=3, seed=0)
    assert error.value.message == (
        "two.jsonl: class 'x' has 6 rows, fewer than the shots + queries = 7 an episode draws of each class"
    )
    assert "trainer.meta.ways" in error.value.hint


def test_more_ways_than_a_dataset_has_classes_is_refused():
    with pytest.raises(DataError, match=r"trainer.meta.ways=3, but two.jsonl has only 2 classes \(x, y\)"):
        EpisodeSampler(TASKS, ways=3, shots=1, queries=1, seed=0)


def test_with_ways_set_a_short_class_is_left_out_of_the_episodes(capsys):
    tasks = [TASKS[0], TaskRows("skewed.jsonl", ["x", "y", "z"], [0] * 9 + [1] * 9 + [2] * 2)]
    sampler = EpisodeSampler(tasks, ways=2, shots=3, queries=2, seed=0)
    assert "skewed.jsonl: classes with fewer than 5 rows are left out of its episodes: 'z' (2 rows)" in " ".join(
        capsys.readouterr().out.split())
    episodes = [sampler.train_episode(i) for i in range(30)]
    drawn = {c for episode in episodes if episode.task == 1 for c in episode.classes}
    assert drawn == {0, 1}


def test_meta_settings_report_every_problem():
    cfg = MetaConfig(tasks=["a.jsonl"], ways=1, shots=0, inner_lr=0.0, meta_lr=-1.0, eval_episodes=-1)
    assert cfg.validate() == [
        "trainer.meta.tasks lists one dataset (a.jsonl); meta-learning needs at least two, each with its own label "
        "set (to train on one dataset, drop trainer.meta.tasks and set data.train_file)",
        "trainer.meta.ways=1 must be at least 2 (or null for all of a dataset's classes)",
        "trainer.meta.shots=0 must be at least 1",
        "trainer.meta.eval_episodes=-1 must be at least 0 (0: no evaluation)",
        "trainer.meta.inner_lr=0.0 must be positive",
        "trainer.meta.meta_lr=-1.0 must be positive",
    ]
    assert MetaConfig(tasks=["a", "b", "a"]).validate() == [
        "trainer.meta.tasks lists a more than once; list each dataset once"]
    assert MetaConfig().validate() == []


def test_the_outer_step_size_defaults_to_the_algorithms_own():
    assert MetaConfig().step_size() == 0.1
    assert MetaConfig(algorithm=MetaAlgorithm.fomaml, inner_lr=0.03).step_size() == 0.03
    assert MetaConfig(algorithm=MetaAlgorithm.fomaml, meta_lr=0.5).step_size() == 0.5


def test_datasets_are_named_by_the_fewest_trailing_parts_that_tell_them_apart():
    assert short_names(["/d/trec/train.jsonl", "/d/ag_news/train.jsonl"]) == ["trec/train.jsonl", "ag_news/train.jsonl"]
    assert short_names(["/d/a.jsonl", "/e/b.jsonl"]) == ["a.jsonl", "b.jsonl"]


def test_a_finished_run_directory_resolves_to_its_model_folder(tmp_path):
    assert (sources.RUN_MODEL, sources.RUN_ADAPTER, sources.RUN_METRICS) == (*directory.ARTIFACTS, directory.METRICS)
    assert set(sources.RUN_MARKS) <= set(directory.RUN_CONTENTS)
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(ModelError, match="is a run directory without a finished run in it"):
        sources.resolve(str(run))
    (run / "metrics.json").write_text("{}")
    assert sources.resolve(str(run)) == str(run / "model")
    (run / "model").rename(run / "adapter")
    with pytest.raises(ModelError, match=r"is a run that saved an adapter \(adapter/\)") as error:
        sources.resolve(str(run))
    assert f"ftcli export run_dir={run} merge=true" in error.value.hint
    (run / "config.json").write_text("{}")  # a model folder, whatever else it holds
    assert sources.resolve(str(run)) == str(run)
