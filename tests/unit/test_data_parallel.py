"""Data-parallel training shares one unit count: two processes (CPU, gloo) that each accumulate their
own micro-batches apply the gradient of one process that holds every micro-batch.

Each process counts its supervised tokens, the loop sums the counts across processes and scales
each micro-batch's loss by its share of the total times the number of processes, and DDP averages
the processes' gradients; the result is the mean over every supervised token of the step.
"""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from ftcli.engine.step import LossUnit, ModelLoss, WrappedStep
from tests.unit.test_grad_accumulation import Quiet, collate, instruction_rows, same, tiny


class LastGradient(WrappedStep):
    """Keeps the gradients as they stand after each backward pass: after the step's last one, which
    DDP synchronises, they are what the optimiser applies."""

    def __init__(self, inner, model) -> None:
        super().__init__(inner)
        self.model, self.grads = model, {}

    def backward(self, model, batch, backward):
        loss = self.inner.backward(model, batch, backward)
        self.grads = {n: p.grad.clone() for n, p in self.model.named_parameters() if p.grad is not None}
        return loss


def one_step(batch_size: int, accumulate: int) -> dict[str, torch.Tensor]:
    """The gradient of the first optimiser step of a tiny causal LM on `instruction_rows`."""
    from transformers import AutoModelForCausalLM

    from ftcli.config.schema import EvalStrategy, Precision, Scheduler, TrainerConfig
    from ftcli.engine.loop import Training, train_loop

    model = tiny(AutoModelForCausalLM, "gpt2")
    step = LastGradient(ModelLoss(LossUnit.next_tokens), model)
    cfg = TrainerConfig(max_steps=1, batch_size=batch_size, grad_accum_steps=accumulate, group_by_length=False,
                        eval_strategy=EvalStrategy.no, precision=Precision.fp32, save_every=None, max_grad_norm=None,
                        warmup_ratio=0.0, scheduler=Scheduler.constant, logging_steps=1)
    train_loop(Training(model, instruction_rows(), collate, 1e-3, 0, lambda m: {}, Quiet(), step), cfg)
    return step.grads


def _rank(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from accelerate import PartialState

    PartialState(cpu=True)  # CPU processes join one gloo group
    grads = one_step(batch_size=2, accumulate=2)  # each process: 2 of the 4 micro-batches
    if rank == 0:
        torch.save(grads, out)


def test_two_processes_apply_the_gradient_of_one_that_holds_every_micro_batch(tmp_path):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    out = str(tmp_path / "grads.pt")
    mp.start_processes(_rank, args=(2, port, out), nprocs=2, start_method="spawn")
    parallel = torch.load(out, weights_only=True)
    assert same(parallel, one_step(batch_size=2, accumulate=4))
