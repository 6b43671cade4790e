"""GRPO's training step: sample a group of completions per prompt, score them, and follow the
policy gradient of their group-relative advantages, held near a reference policy by a KL term.

For a micro-batch of B prompts the step

1. samples G = `num_generations` completions of each prompt with the trained model's `generate`
   (in eval mode, so without dropout, with `temperature` and `top_p` and no top-k cut, drawing on
   torch's global random state, which checkpoints save and a resumed run restores: a resumed run
   samples what the uninterrupted one would have). A completion ends at its first stop token, which
   it keeps; what `generate` wrote after it is masked out;
2. scores each with the task's reward functions (`ftcli.tasks.rewards`): r, the weighted sum;
3. gives each completion its advantage within its group, A = (r - mean) / (std + 1e-4), or
   r - mean without `scale_rewards`; a group whose rewards are all equal has A = 0 exactly;
4. computes, per completion token t, with logp the trained model's log-probability of the token
   (logits divided by the sampling temperature) and ref the reference model's,

       loss_t = -exp(logp_t - sg(logp_t)) * A  +  beta * (exp(ref_t - logp_t) - (ref_t - logp_t) - 1)

   (sg: no gradient; the ratio is 1 in value, and its gradient is that of logp: the policy
   gradient. The second term is the k3 estimator of KL(policy || reference), which is 0 where the
   two agree), and averages it over each completion's tokens, then over the B x G completions,
   which are the step's units. With `beta` = 0 the reference model is never run.

One update follows each generation, so the policy that sampled is the policy being updated and no
ratio clipping (PPO's epsilon) is needed. GRPO trains without dropout: `prepare` sets every dropout
layer of the trained model to p = 0, so the loss pass scores the very policy that sampled (in eval
mode) and the KL term measures how far it moved from the reference, not dropout noise (with
MiniLM's dropout of 0.1 that noise alone reads as a KL of about 1 per token). The model stays in
train mode, so gradient checkpointing still applies to the loss pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ftcli.data.readers import Row
from ftcli.engine.frozen import FrozenModels
from ftcli.engine.step import Batch, Step
from ftcli.tasks.rewards import Rewards, Scored

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from torch import nn
    from transformers import GenerationMixin, PreTrainedTokenizerBase

PROMPTS = "grpo_prompts"  # the batch key holding each prompt's `Prompt`, beside its token ids
STD_FLOOR = 1e-4  # added to a group's reward spread before dividing by it


@dataclass(frozen=True)
class Prompt:
    """What the rewards read of one prompt besides its completions: its text and its source row."""

    text: str  # the last user turn
    row: Row


@dataclass(frozen=True)
class Sampling:
    """How the step samples and weighs completions (`task.num_generations`, `task.beta`, ...)."""

    num_generations: int = 4
    beta: float = 0.04
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    scale_rewards: bool = True


def group_advantages(rewards: torch.Tensor, scale: bool = True) -> torch.Tensor:
    """Each completion's reward less its group's mean, divided by the group's standard deviation
    (+ `STD_FLOOR`) when `scale`; `rewards` is (groups, completions per group).

    A group whose rewards are all equal has nothing to prefer: its advantages are exactly 0, not the
    rounding error that subtracting a float mean from each reward can leave.
    """
    centred = rewards - rewards.mean(-1, keepdim=True)
    if scale:
        centred = centred / (rewards.std(-1, keepdim=True) + STD_FLOOR)
    flat = rewards.amax(-1, keepdim=True) == rewards.amin(-1, keepdim=True)
    return centred.masked_fill(flat, 0.0)


def completion_mask(completions: torch.Tensor, stops: Sequence[int]) -> torch.Tensor:
    """Which tokens belong to each completion: everything up to and including its first stop token."""
    import torch

    if not stops:
        return torch.ones_like(completions, dtype=torch.bool)
    is_stop = torch.isin(completions, torch.tensor(list(stops), device=completions.device))
    stops_before = is_stop.long().cumsum(-1) - is_stop.long()
    return stops_before == 0


def k3(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from sampled tokens: exp(d) - d - 1, d = ref - logp.
    Never negative, 0 where the two agree, and unbiased for samples of the policy."""
    import torch

    gap = ref_logps - logps
    return torch.exp(gap) - gap - 1


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids of left-padded rows, as `generate` numbers them: from 0 at each row's first real token."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def completion_logps(model: nn.Module, sequences: torch.Tensor, mask: torch.Tensor, length: int,
                     temperature: float) -> torch.Tensor:
    """The log-probability `model` gives each of the last `length` tokens of `sequences` (the
    completions), with its logits divided by `temperature`: (rows, length)."""
    import torch

    logits = model(input_ids=sequences, attention_mask=mask, position_ids=positions(mask), use_cache=False).logits
    # slicing from the end leaves out any virtual tokens a prompt method puts before the input
    logits = logits[:, -length - 1:-1].float() / temperature
    targets = sequences[:, -length:]
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


@dataclass
class Figures:
    """Sums of what the step measured since the last log record."""

    completions: int = 0
    groups: int = 0
    reward: float = 0.0
    reward_std: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    kl: float = 0.0
    tokens: int = 0
    flat_groups: int = 0

    def means(self, with_kl: bool) -> dict[str, float]:
        if not self.completions:
            return {}
        n, groups = self.completions, max(self.groups, 1)
        return {
            "reward": self.reward / n,
            "reward_std": self.reward_std / groups,
            **{f"reward/{label}": total / n for label, total in self.parts.items()},
            **({"kl": self.kl / n} if with_kl else {}),
            "completion_length": self.tokens / n,
            "zero_spread": self.flat_groups / groups,
        }


class GrpoStep(Step):
    """The loss of a micro-batch of prompts: the GRPO objective of the completions sampled for them.

    Batches hold left-padded prompt ids and masks, and their `Prompt`s under `PROMPTS`.
    """

    def __init__(self, sampling: Sampling, rewards: Rewards, tokenizer: PreTrainedTokenizerBase,
                 stop_ids: Sequence[int], frozen: FrozenModels) -> None:
        self.sampling = sampling
        self.rewards = rewards
        self.tokenizer = tokenizer
        self.stop_ids = list(stop_ids)
        self.frozen = frozen
        self.policy: nn.Module | None = None
        self.generate_settings: dict[str, Any] = {}
        self.figures = Figures()

    def prepare(self, accelerator: Accelerator, model: nn.Module) -> None:
        """Switch the model's dropout off and keep it to sample with, and where its generation stops:
        the task's stop tokens and its own."""
        from ftcli.engine.eval_mode import disable_dropout
        from ftcli.engine.generation import stop_settings

        disable_dropout(model)
        self.policy = model
        s = self.sampling
        self.generate_settings = {
            "do_sample": True, "temperature": s.temperature, "top_p": s.top_p, "top_k": 0,
            "max_new_tokens": s.max_new_tokens, "num_return_sequences": s.num_generations,
            **stop_settings(model, self.stop_ids, self.tokenizer.pad_token_id),
        }

    def units(self, batch: Batch) -> torch.Tensor:
        """The completions the loss is a mean over: G per prompt."""
        import torch

        ids = batch["input_ids"]
        return torch.tensor(len(ids) * self.sampling.num_generations, device=ids.device)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        import torch

        if self.policy is None:
            raise RuntimeError("GrpoStep.prepare must be given the model before the first batch")
        s = self.sampling
        prompts = cast(Sequence[Prompt], batch[PROMPTS])  # not a tensor: the collator's own entry
        prompt_mask = batch["attention_mask"].repeat_interleave(s.num_generations, 0)
        sequences = self.sample(batch["input_ids"], batch["attention_mask"])
        completions = sequences[:, prompt_mask.shape[1]:]
        keep = completion_mask(completions, self.generate_settings["eos_token_id"] or [])
        texts = self.texts(completions, keep)
        grouped = [p for p in prompts for _ in range(s.num_generations)]
        scored = self.rewards.score(texts, [p.text for p in grouped], [p.row for p in grouped])
        rewards = torch.tensor(scored.total, dtype=torch.float32, device=sequences.device).view(-1, s.num_generations)
        advantages = group_advantages(rewards, s.scale_rewards).view(-1, 1)

        mask = torch.cat([prompt_mask, keep.to(prompt_mask.dtype)], dim=1)
        length = completions.shape[1]
        logps = completion_logps(model, sequences, mask, length, s.temperature)
        per_token = -torch.exp(logps - logps.detach()) * advantages
        kl = None
        if s.beta:
            with self.frozen.reference(self.policy) as reference:
                ref_logps = completion_logps(reference, sequences, mask, length, s.temperature)
            kl = k3(logps, ref_logps)
            per_token = per_token + s.beta * kl
        tokens = keep.sum(-1).clamp(min=1)
        per_completion = (per_token * keep).sum(-1) / tokens
        self._count(rewards, scored, keep, None if kl is None else (kl.detach() * keep).sum(-1) / tokens)
        return per_completion.mean()

    def sample(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """G sampled continuations of each left-padded prompt, grouped by prompt: (B x G, prompt + new tokens)."""
        import torch

        from ftcli.engine.eval_mode import evaluating

        policy = cast("GenerationMixin", self.policy)  # a transformers or PEFT model: it has generate()
        with evaluating(cast("nn.Module", policy)), torch.no_grad():
            return cast("torch.Tensor", policy.generate(input_ids=ids, attention_mask=mask, **self.generate_settings))

    def texts(self, completions: torch.Tensor, keep: torch.Tensor) -> list[str]:
        """Each completion's text up to its stop, without special tokens."""
        ids = [row[row_keep].tolist() for row, row_keep in zip(completions, keep)]
        return [text.strip() for text in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def _count(self, rewards: torch.Tensor, scored: Scored, keep: torch.Tensor, kl: torch.Tensor | None) -> None:
        f = self.figures
        f.completions += rewards.numel()
        f.groups += rewards.shape[0]
        f.reward += sum(scored.total)
        f.reward_std += float(rewards.std(-1).sum())
        for label, scores in scored.parts.items():
            f.parts[label] = f.parts.get(label, 0.0) + sum(scores)
        f.kl += float(kl.sum()) if kl is not None else 0.0
        f.tokens += int(keep.sum())
        f.flat_groups += int((rewards.amax(-1) == rewards.amin(-1)).sum())

    def logged(self) -> dict[str, float]:
        """Since the last log record: the mean reward (total and per function), the mean spread of
        rewards within a group, the mean KL per token (with `beta` > 0), the mean completion length
        in tokens, and the share of groups whose rewards were all equal (which teach nothing). Under
        `accelerate launch` each process reports its own micro-batches'."""
        figures, self.figures = self.figures, Figures()
        return figures.means(with_kl=bool(self.sampling.beta))
