"""The reference model a run loads again (methods that train the base weights) is the model training
started from, also where the checkpoint lacks weights that are drawn at random when it loads."""

from __future__ import annotations

import torch
from accelerate.utils import set_seed

from ftcli.config.schema import EMBEDDED_MODEL, ModelConfig, TrainConfig
from ftcli.methods import METHODS
from ftcli.methods.full import FullConfig
from ftcli.models.loading import build_model, build_tokenizer, load_config
from ftcli.runs.trained import frozen_models
from ftcli.tasks import TASKS
from ftcli.tasks.instruction import InstructionConfig


def test_a_reloaded_reference_starts_where_the_trained_model_did():
    # the embedded MiniLM has no language-model transform: from_pretrained draws it at random
    cfg = TrainConfig(model=ModelConfig(EMBEDDED_MODEL), task=InstructionConfig(), method=FullConfig(), seed=3)
    kind, method = TASKS.get("instruction").impl, METHODS.get("full").impl
    tokenizer = build_tokenizer(cfg.model)
    set_seed(cfg.seed)  # as `train` builds the model it trains
    trained = build_model(cfg.model, kind.model_class(), [], **kind.model_config(cfg.task, load_config(cfg.model)))
    torch.rand(100)  # training draws on the random state before the reference is first asked for
    frozen = frozen_models(cfg, kind, method, [], tokenizer)
    state = torch.get_rng_state()
    with frozen.reference(trained) as reference:
        assert reference is not trained
        ours, theirs = trained.state_dict(), reference.state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert torch.equal(torch.get_rng_state(), state)  # and leaves the training's random state as it was
