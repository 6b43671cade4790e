"""Tiny BERT and GPT-2 sequence classifiers and a batch for the method tests.

Both tiny models tokenise with the embedded MiniLM tokenizer, so one batch serves both.
"""

from __future__ import annotations

import pytest
import torch

from ftcli.config.schema import ModelConfig
from ftcli.models.loading import build_model, build_tokenizer
from ftcli.tasks import TASKS

LABELS = ["negative", "positive"]


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer(ModelConfig(name_or_path="tiny:bert"))


def tiny_classifier(arch: str):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name_or_path=f"tiny:{arch}"), TASKS.get("sentiment").impl.model_class(), LABELS)
    return model.eval()


@pytest.fixture
def tiny_bert():
    return tiny_classifier("bert")


@pytest.fixture
def tiny_gpt2():
    return tiny_classifier("gpt2")


@pytest.fixture(scope="session")
def batch(tokenizer):
    texts = ["a fine and moving film", "dull", "the service was slow and the food was cold"]
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))
