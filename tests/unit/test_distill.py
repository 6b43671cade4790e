"""Distillation's loss and batches: the KL term against closed forms, the blend with the task's loss,
and the teacher's cached logits laid out like the batch they travel in."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, DataCollatorWithPadding

from ftcli.config.schema import DataConfig, ModelConfig
from ftcli.engine.distill import TEACHER, DistillStep, TeacherCollator, distillation_kl, teacher_heads
from ftcli.engine.step import IGNORE_INDEX, ClassScores, LossUnit, ModelLoss, Objective
from ftcli.models.loading import build_tokenizer
from ftcli.models.tiny import tiny_config
from ftcli.tasks import TASKS
from ftcli.tasks.class_outputs import NotClasses, class_head, label_difference
from ftcli.tasks.classification import Problem


def test_the_kl_term_is_the_closed_form_and_a_mean_over_the_predictions_with_a_target():
    # student (a, 0) against teacher (0, a) at T: with x = a / T, KL = x · tanh(x / 2)
    student = torch.tensor([[2.0, 0.0], [7.0, -3.0], [0.5, 0.5]])
    teacher = torch.tensor([[0.0, 2.0], [1.0, 1.0], [0.5, 0.5]])
    scores = ClassScores(student, torch.tensor([0, IGNORE_INDEX, 1]))  # row 1 predicts nothing; row 2 agrees
    assert math.isclose(distillation_kl(scores, teacher, 2.0).item(), math.tanh(0.5) / 2, rel_tol=1e-6)
    assert math.isclose(distillation_kl(scores, teacher, 1.0).item(), 2 * math.tanh(1.0) / 2, rel_tol=1e-6)


def test_a_class_the_teacher_scores_minus_infinity_adds_nothing():
    # QA: a padding position has no teacher probability; p_t = (1/2, 1/2, 0), p_s = softmax(0, 0, 5)
    scores = ClassScores(torch.tensor([[0.0, 0.0, 5.0]], requires_grad=True), torch.tensor([1]))
    kl = distillation_kl(scores, torch.tensor([[0.0, 0.0, float("-inf")]]), 1.0)
    assert math.isclose(kl.item(), math.log((2 + math.exp(5)) / 2), rel_tol=1e-6)
    kl.backward()
    assert torch.isfinite(scores.logits.grad).all()


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(tiny_config("bert", num_labels=3)).eval()


def batch(**extra):
    torch.manual_seed(1)
    mask = torch.ones(4, 6, dtype=torch.long)
    mask[1, 3:] = 0
    return {"input_ids": torch.randint(5, 90, (4, 6)), "attention_mask": mask,
            "labels": torch.tensor([0, 2, 1, 1]), **extra}


@pytest.mark.parametrize("alpha, temperature", [(0.5, 2.0), (1.0, 3.0)])
def test_the_loss_blends_the_task_loss_with_t_squared_times_the_kl(classifier, alpha, temperature):
    model, teacher = classifier, torch.tensor([[1.0, 0.0, -1.0], [0.0, 3.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    step = DistillStep(ModelLoss(LossUnit.rows), temperature, alpha)
    with torch.no_grad():
        loss = step.loss(model, batch(**{TEACHER: teacher}))
        out = model(**batch())
    kl = F.kl_div(F.log_softmax(out.logits / temperature, -1), F.log_softmax(teacher / temperature, -1),
                  log_target=True, reduction="batchmean")
    assert torch.allclose(loss, (1 - alpha) * out.loss + alpha * temperature**2 * kl, atol=1e-6)
    assert step.logged() == {"distill_kl": pytest.approx(kl.item(), rel=1e-5)}
    assert step.logged() == {}  # counted afresh after each record


def test_alpha_zero_is_the_task_loss(classifier):
    model, step = classifier, DistillStep(ModelLoss(LossUnit.rows), 2.0, 0.0)
    with torch.no_grad():
        assert torch.equal(step.loss(model, batch(**{TEACHER: torch.randn(4, 3)})), model(**batch()).loss)


def test_token_logits_are_cut_like_the_students_scores():
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_config(tiny_config("bert", num_labels=3)).eval()
    labels = torch.full((4, 6), IGNORE_INDEX)
    labels[:, 1:3] = torch.tensor([[0, 1], [2, 2], [1, 0], [0, 0]])
    inputs = {**batch(), "labels": labels}
    with torch.no_grad():
        out, [scores] = ModelLoss(LossUnit.tokens).scores(model, inputs)
        teacher = out.logits.clone()  # a teacher that agrees everywhere: no KL at any temperature
        [cut] = teacher_heads(teacher, Objective.classes)
        assert torch.equal(cut, scores.logits)
        assert distillation_kl(scores, cut, 2.0).item() == pytest.approx(0.0, abs=1e-7)
    start, end = teacher_heads(torch.arange(24.0).reshape(2, 6, 2), Objective.spans)
    assert start.tolist() == [[0, 2, 4, 6, 8, 10], [12, 14, 16, 18, 20, 22]] and end[1, 5] == 23


@pytest.mark.parametrize("side", ["right", "left"])
def test_per_token_teacher_logits_sit_at_each_rows_real_tokens(side):
    tokenizer = build_tokenizer(ModelConfig("tiny:bert"))
    tokenizer.padding_side = side
    short, long = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.arange(8.0, dtype=np.float32).reshape(4, 2)
    features = [{"input_ids": [101, 102], TEACHER: short}, {"input_ids": [101, 7, 8, 102], TEACHER: long}]
    collated = TeacherCollator(DataCollatorWithPadding(tokenizer))(features)
    assert set(collated) == {"input_ids", "attention_mask", TEACHER}
    padded = collated[TEACHER][0]
    real = collated["attention_mask"][0].bool()
    assert padded[real].tolist() == short.tolist() and torch.isinf(padded[~real]).all()
    assert collated[TEACHER][1].tolist() == long.tolist()
    assert TEACHER in features[0]  # the training features keep their logits for the next epoch


def bound(name, **settings):
    entry = TASKS.get(name)
    tokenizer = build_tokenizer(ModelConfig("tiny:bert"))
    return entry.impl.bind(entry.config_cls(**settings), DataConfig(), ["a", "b"], tokenizer)


@pytest.mark.parametrize("name, settings, reason", [
    ("summarization", {}, "generates text"),
    ("instruction", {}, "generates text"),
    ("preference", {}, "compares answers"),
    ("kto", {}, "compares answers"),
    ("reward_model", {}, "compares answers"),
    ("sentiment", {"problem": Problem.regression}, "not one softmax over classes"),
    ("text_classification", {"problem": Problem.multi_label}, "not one softmax over classes"),
])
def test_tasks_without_classes_are_refused_with_what_they_predict(name, settings, reason):
    with pytest.raises(NotClasses, match=reason):
        class_head(bound(name, **settings), spans=True)


def test_qa_has_classes_only_where_its_span_heads_count():
    assert class_head(bound("qa"), spans=True).per_token
    with pytest.raises(NotClasses, match="picks an answer span"):
        class_head(bound("qa"))
    assert not class_head(bound("pair_classification")).per_token and class_head(bound("ner")).per_token


def test_label_sets_differ_by_name_not_by_order():
    assert label_difference(["neg", "pos"], ["pos", "neg"]) is None
    assert label_difference(["neg", "pos"], ["neg", "neutral"]) == "lacks pos and adds neutral"


def teacher_run(folder, task, labels):
    """A finished teacher run as `check_teacher` reads it: config, labels, metrics and a tokenizer, no weights."""
    from ftcli.config.schema import TrainConfig
    from ftcli.methods.full import FullConfig
    from ftcli.runs.directory import LABELS, METRICS, RunDir, write_config

    run = RunDir(folder)
    write_config(run, TrainConfig(model=ModelConfig("tiny:bert"), task=task, method=FullConfig()))
    run.write_json(LABELS, {"labels": labels})
    run.write_json(METRICS, {})
    build_tokenizer(ModelConfig("tiny:bert")).save_pretrained(folder / "model")
    return folder


def student(name, teacher, **settings):
    from dataclasses import replace

    from ftcli.config.schema import DistillConfig, TrainConfig, TrainerConfig
    from ftcli.methods.full import FullConfig

    trainer = replace(TrainerConfig(), distill=DistillConfig(teacher=str(teacher), **settings))
    return TrainConfig(model=ModelConfig("tiny:bert"), task=TASKS.get(name).config_cls(), method=FullConfig(),
                       trainer=trainer)


def test_a_qa_teacher_teaches_both_span_heads_of_a_student_with_its_tokenizer(tmp_path):
    from ftcli.runs.teacher import check_teacher
    from ftcli.tasks.qa import QaConfig

    folder = teacher_run(tmp_path / "teacher", QaConfig(), ["start", "end"])
    checked = check_teacher(student("qa", folder, alpha=0.3), TASKS.get("qa").impl, ["start", "end"],
                            build_tokenizer(ModelConfig("tiny:bert")))
    assert checked.head.per_token and checked.head.loss.objective is Objective.spans
    assert (checked.settings.alpha, checked.labels) == (0.3, ["start", "end"])


def test_the_cache_gives_back_exactly_what_was_written_for_its_fingerprint_only(tmp_path):
    from ftcli.runs.teacher import _read, _write

    per_text = [np.array([0.1, -2.5], np.float32), np.array([3.0, 1e-8], np.float32)]
    per_token = [np.arange(6, dtype=np.float32).reshape(3, 2), np.array([[7.5, -1.0]], np.float32)]
    for logits, per_token_head in ((per_text, False), (per_token, True)):
        path = tmp_path / f"{per_token_head}.safetensors"
        _write(path, "abc", logits)
        back = _read(path, "abc", per_token_head)
        assert back is not None and all(np.array_equal(a, b) and a.shape == b.shape for a, b in zip(back, logits))
        assert _read(path, "other inputs", per_token_head) is None  # stale: computed again
    (tmp_path / "damaged.safetensors").write_bytes(b"not a safetensors file")
    assert _read(tmp_path / "damaged.safetensors", "abc", False) is None


def test_classes_line_up_by_name():
    from ftcli.tasks.class_outputs import in_order

    logits = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert in_order(logits, ["b", "c", "a"], ["a", "b", "c"]).tolist() == [[3.0, 1.0, 2.0], [6.0, 4.0, 5.0]]


def test_with_smoothing_the_task_term_is_the_smoothed_cross_entropy():
    import torch

    from ftcli.engine.distill import TEACHER, DistillStep
    from ftcli.engine.step import ClassScores, ModelLoss, cross_entropy

    logits, labels = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, -2.0]]), torch.tensor([0, 2])

    class Fixed(torch.nn.Module):
        def forward(self, **batch):
            from types import SimpleNamespace

            return SimpleNamespace(logits=logits, loss=torch.nn.functional.cross_entropy(logits, labels))

    teacher = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    batch = {"input_ids": torch.zeros(2, 3, dtype=torch.long), "labels": labels, TEACHER: teacher}
    step = DistillStep(ModelLoss(), temperature=2.0, alpha=0.25, smoothing=0.1)
    kl = torch.nn.functional.kl_div(torch.log_softmax(logits / 2, -1), torch.log_softmax(teacher / 2, -1),
                                    log_target=True, reduction="batchmean")
    expected = 0.75 * cross_entropy(ClassScores(logits, labels), 0.1) + 0.25 * 4 * kl
    assert torch.allclose(step.loss(Fixed(), batch), expected, atol=1e-6)
