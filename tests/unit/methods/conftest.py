"""A tiny BERT sequence classifier and a batch for the method tests."""

from __future__ import annotations

import pytest
import torch

from ftcli.config.schema import ModelConfig
from ftcli.modeling import build_model, build_tokenizer
from ftcli.tasks import TASKS

LABELS = ["negative", "positive"]


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer(ModelConfig(name_or_path="tiny:bert"))


@pytest.fixture
def tiny_bert():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name_or_path="tiny:bert"), TASKS.get("sentiment").impl.model_class(), LABELS)
    return model.eval()


@pytest.fixture(scope="session")
def batch(tokenizer):
    texts = ["a fine and moving film", "dull", "the service was slow and the food was cold"]
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))
