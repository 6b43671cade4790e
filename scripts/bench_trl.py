"""ftcli against TRL on preference training, in one invocation: DPO with LoRA, and a reward model.

Two parts, each the same model, rows, hyperparameters and number of optimiser steps on both sides:

- `dpo`: `ftcli train task=preference method=lora` against TRL's `DPOTrainer` with a peft
  `LoraConfig` of the same rank, alpha, dropout and target modules; the reference is the base
  model with the adapter switched off on both sides, the loss DPO's sigmoid loss with beta 0.1.
- `reward`: `ftcli train task=reward_model method=full` against TRL's `RewardTrainer`: a
  sequence-classification head with one output, the Bradley-Terry loss on chosen/rejected pairs.
  The part runs when the installed ftcli has `task=reward_model`, and is skipped (with a note)
  otherwise.

The model. Both trainers load one model folder that this script writes into its work directory:
a Llama (RMSNorm, rotary positions, gated MLP) with the shape of the embedded MiniLM (6 layers,
hidden 384, 12 heads, MLP 1536, input and output embeddings tied) and MiniLM's tokenizer and
vocabulary, its weights drawn under a fixed seed. Not the embedded MiniLM itself: ftcli runs that
encoder as a decoder through `is_decoder=True`, but TRL's DPOTrainer computes log-probabilities
from the backbone's last hidden state times `get_output_embeddings().weight`, which for a BERT LM
head skips its transform layer (dense, activation, LayerNorm), so TRL would score a different
function than the model is. A Llama's head is one linear layer after the backbone, which both
sides compute alike. Random weights cost the same time and memory as trained ones; the losses
and rewards are not the point here and are not compared. The tokenizer's EOS is set to `[SEP]`
(what ftcli ends an answer with when a tokenizer has no EOS).

The rows: preference pairs from jsonl (`prompt`, `chosen`, `rejected`, optional `system`;
default: the orca_dpo_pairs sample in `shared/` beside the checkout), the first `--max-pairs` whose
prompt leaves room for an answer within `--max-length` tokens (ftcli refuses a row whose prompt
alone fills it; TRL drops it). The prompt is written the same way on both sides: ftcli writes it
with its plain template, since MiniLM's tokenizer has no chat template (`### System:` /
`### Instruction:` / `### Response:`), and TRL gets the same text as its `prompt`, with the
tokenizer told to add no special tokens (`[CLS]`/`[SEP]`), as ftcli adds none, and `[SEP]` as
the EOS both append to each answer. Both keep the start of a sequence and cut its end at
`--max-length`. The TRL child checks that its tokenised pairs are exactly ftcli's token ids and
the table says so. For the reward model TRL is handed ftcli's token ids (its RewardTrainer takes
`chosen_ids`/`rejected_ids` as they are; from text it would drop the pairs longer than
`max_length` where ftcli cuts them).

The same optimiser on both sides: AdamW (fused), weight decay 0.01 (none on biases and norms),
linear schedule with 6% warm-up, gradient clipping at 1.0, fp32 on the CPU, no evaluation and
no checkpoints while training, dropout off (both trainers' default for these tasks). TRL's own
defaults differ in two settings that are set here to ftcli's: gradient checkpointing (TRL: on;
`--gradient-checkpointing` turns it on for both) and bf16 (TRL: on; fp32 here, as bf16 is
emulated on CPUs without it). TRL has no length-grouped batches for these trainers (its columns
are dropped before the sampler is built), so it draws random batches; ftcli groups by length, its
default; the padding column shows what that changes (`-- trainer.group_by_length=false` turns
it off on the ftcli side).

What is measured, in the same way for both, each run in a fresh child process: the training
tokens (real ones: the attention mask of every batch trained, both answers of each pair), the
wall time from the start of the first optimiser step to the end of the last, the CPU time the
child spent in that span (all its threads: on a machine shared with other work it counts the work
done, where wall time also counts the waiting), and the peak RSS of the child (`getrusage`),
beside the RSS it had reached before its first step. Repeats alternate which side runs first;
the table gives the median of each and the range (min–max) of tokens/s and peak RSS.
`--profile` runs each child's second step under `torch.profiler` and keeps its top operators.

    python scripts/bench_trl.py                                    # both parts, 3 repeats each
    python scripts/bench_trl.py --parts dpo --repeats 5
    python scripts/bench_trl.py --steps 10 --max-pairs 40 -- trainer.group_by_length=false

Needs TRL (`pip install -e ".[bench]"`, best in a venv of its own). Arguments after `--` are
extra overrides for the ftcli side only.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_children, beside this script
from bench_children import measure, meter_optimiser_steps, peak_rss_mb, read_jsonl, result_file, summarise  # noqa: E402
from bench_children import versions as library_versions  # noqa: E402

CHECKOUT = Path(__file__).resolve().parents[1]
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "datasets", "trl")  # whose versions head the table
DEFAULT_DATA = CHECKOUT.parent / "shared" / "data" / "orca_dpo_pairs_sample" / "validation.jsonl"
PARTS = ("dpo", "reward")
SIDES = ("trl", "ftcli")
NAMES = {"trl": "TRL", "ftcli": "ftcli"}
TRAINERS = {"dpo": "DPOTrainer + LoRA", "reward": "RewardTrainer"}
# A Llama the shape of the embedded MiniLM (all-MiniLM-L6-v2), on its vocabulary
MODEL_SHAPE = {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6, "num_attention_heads": 12,
               "num_key_value_heads": 12, "max_position_embeddings": 512, "tie_word_embeddings": True}
MODEL_SEED = 1234
END_TOKEN = "[SEP]"  # what both sides end an answer with: MiniLM's tokenizer has no EOS
LORA = {"r": 8, "alpha": 16, "dropout": 0.1, "targets": ["q_proj", "v_proj"]}  # ftcli's method=lora defaults
OPTIMISER = {"weight_decay": 0.01, "warmup_ratio": 0.06, "max_grad_norm": 1.0}  # ftcli's trainer defaults
BETA = 0.1
DEFAULT_LR = {"dpo": 5e-5, "reward": 5e-5}
DEV_PAIRS = 4  # ftcli evaluates once after training (outside the timed steps); a few pairs keep that short


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="jsonl of prompt/chosen/rejected (+ system)")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated: dpo, reward")
    parser.add_argument("--max-pairs", type=int, default=16, help="training pairs (the first that fit)")
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps per run")
    parser.add_argument("--batch-size", type=int, default=4, help="pairs per step")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per prompt + answer")
    parser.add_argument("--lr", type=float, default=None, help=f"learning rate (default: {DEFAULT_LR})")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side; the table gives their median")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="on both sides")
    parser.add_argument("--profile", action="store_true",
                        help="profile each run's second step (torch.profiler; <run>.profile.txt): slows that step")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="where the model and run directories go (default: a temp dir)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="extra ftcli overrides (after --)")
    args = parser.parse_args(argv)
    if args.child:
        return args
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        parser.error(f"--parts: {', '.join(unknown) or 'none given'}; choose from {', '.join(PARTS)}")
    args.parts = parts
    for name in ("max_pairs", "steps", "batch_size", "max_length", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.max_pairs < args.batch_size:
        parser.error("--max-pairs must be at least --batch-size")
    return args


# ---------------------------------------------------------------- pure helpers (tested without TRL)


def plain_prompt(prompt: str, system: str | None = None) -> str:
    """The text ftcli's plain template writes before an answer, for TRL's `prompt` column."""
    head = f"### System:\n{system}\n\n" if system else ""
    return f"{head}### Instruction:\n{prompt}\n\n### Response:\n"


def real_tokens(batch: Mapping[str, Any]) -> tuple[int, int]:
    """(real tokens, padded positions) of a collated batch: every `*attention_mask` in it (ftcli's
    reward batches hold the rejected answers' mask under `rejected_attention_mask`)."""
    real = padded = 0
    for key, mask in batch.items():
        if key.endswith("attention_mask"):
            real += int(mask.sum())
            size = 1
            for n in mask.shape:
                size *= int(n)
            padded += size
    return real, padded



def spread(summary: Mapping[str, float]) -> str:
    """The repeats' range as a share of their median: '±4%' is max − min = 8% of the median."""
    if not summary["median"]:
        return "–"
    return f"±{(summary['max'] - summary['min']) / 2 / summary['median'] * 100:.0f}%"


def table(part: str, results: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """One part's table: per side the medians of its repeats (tokens/s with their range, wall and CPU
    seconds of the steps, tokens per CPU second, padding, RSS before training and at its peak with their
    range), then ftcli / TRL: above 1 for speed is ftcli faster, below 1 for seconds and memory ftcli
    the less."""
    rows = {side: {
        "tps": summarise([r["tokens"] / r["seconds"] for r in runs]),
        "seconds": summarise([r["seconds"] for r in runs]),
        "cpu": summarise([r["cpu_seconds"] for r in runs]),
        "tpc": summarise([r["tokens"] / r["cpu_seconds"] for r in runs]),
        "padding": summarise([1 - r["tokens"] / r["padded"] for r in runs]),
        "before": summarise([r["rss_before_mb"] for r in runs]),
        "peak": summarise([r["peak_rss_mb"] for r in runs]),
    } for side, runs in results.items() if runs}
    lines = [f"| {part} | tokens/s | min–max | train s | CPU s | tokens per CPU s | padding "
             "| RSS before training MB | peak RSS MB | min–max |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for side in SIDES:
        if side not in rows:
            continue
        r = rows[side]
        label = f"{NAMES[side]} ({TRAINERS[part]})" if side == "trl" else "ftcli"
        lines.append(f"| {label} | {r['tps']['median']:,.0f} | {r['tps']['min']:,.0f}–{r['tps']['max']:,.0f} "
                     f"({spread(r['tps'])}) | {r['seconds']['median']:.1f} | {r['cpu']['median']:.1f} "
                     f"| {r['tpc']['median']:,.0f} | {r['padding']['median'] * 100:.1f}% | {r['before']['median']:,.0f} "
                     f"| {r['peak']['median']:,.0f} | {r['peak']['min']:,.0f}–{r['peak']['max']:,.0f} |")
    if set(rows) == set(SIDES):
        ours, theirs = rows["ftcli"], rows["trl"]

        def ratio(key: str) -> str:
            return f"{ours[key]['median'] / theirs[key]['median']:.2f}x"

        lines.append(f"| ratio ftcli / TRL | **{ratio('tps')}** | | {ratio('seconds')} | {ratio('cpu')} | "
                     f"**{ratio('tpc')}** | | {ratio('before')} | **{ratio('peak')}** | |")
    return lines


def order(repeat: int) -> tuple[str, ...]:
    """Which side runs first in a repeat: they alternate, so neither always gets the cooler machine."""
    return SIDES if repeat % 2 == 0 else SIDES[::-1]


# ---------------------------------------------------------------- children: one measurement each


class Meter:
    """Times the optimiser steps (first start to last end) and counts the tokens of their batches;
    with `profile` (a path), runs the second step under `torch.profiler` and writes its top operators there."""

    def __init__(self, profile: str | None = None) -> None:
        self.started: float | None = None
        self.ended = self.cpu_started = self.cpu_ended = 0.0
        self.steps = self.tokens = self.padded = 0
        self.rss_before_mb = 0.0
        self.profile, self.profiler = profile, None

    def begin(self, batches: Sequence[Mapping[str, Any]]) -> None:
        if self.started is None:
            self.rss_before_mb = peak_rss_mb()
            self.started, self.cpu_started = time.perf_counter(), time.process_time()
        for batch in batches:
            real, padded = real_tokens(batch)
            self.tokens += real
            self.padded += padded
        if self.profile and self.steps == 1 and self.profiler is None:
            import torch

            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True)
            self.profiler.start()

    def end(self) -> None:
        self.ended, self.cpu_ended = time.perf_counter(), time.process_time()
        self.steps += 1
        if self.profiler is not None and self.steps == 2:
            self.profiler.stop()
            averages = self.profiler.key_averages()
            Path(self.profile).write_text(
                averages.table(sort_by="self_cpu_time_total", row_limit=30) + "\n\n"
                + averages.table(sort_by="self_cpu_memory_usage", row_limit=15))

    def result(self, **extra: Any) -> dict[str, Any]:
        if self.started is None:
            raise SystemExit("no training step was metered")
        return {"tokens": self.tokens, "padded": self.padded, "steps": self.steps,
                "seconds": self.ended - self.started, "cpu_seconds": self.cpu_ended - self.cpu_started,
                "rss_before_mb": self.rss_before_mb,
                "peak_rss_mb": peak_rss_mb(), **extra}


def ftcli_overrides(part: str, spec: Mapping[str, Any]) -> list[str]:
    common = [
        f"model.name_or_path={spec['model']}", f"data.train_file={spec['train']}", f"data.validation_file={spec['dev']}",
        f"trainer.max_steps={spec['steps']}", f"trainer.batch_size={spec['batch_size']}", f"trainer.lr={spec['lr']}",
        f"trainer.weight_decay={OPTIMISER['weight_decay']}", f"trainer.warmup_ratio={OPTIMISER['warmup_ratio']}",
        f"trainer.max_grad_norm={OPTIMISER['max_grad_norm']}", "trainer.scheduler=linear", "trainer.fused_optimizer=true",
        "trainer.eval_strategy=no", "trainer.save_every=null", "trainer.logging_steps=10", "trainer.precision=fp32",
        f"trainer.gradient_checkpointing={str(spec['gradient_checkpointing']).lower()}",
        f"task.max_length={spec['max_length']}", f"seed={spec['seed']}", f"hydra.run.dir={spec['run']}",
    ]
    if part == "dpo":
        targets = ",".join(LORA["targets"])
        specific = ["task=preference", "task.loss=dpo", f"task.beta={BETA}", "task.template=plain",
                    "task.disable_dropout=true", "method=lora", f"method.rank={LORA['r']}", f"method.alpha={LORA['alpha']}",
                    f"method.dropout={LORA['dropout']}", f"method.target_modules=[{targets}]"]
    else:
        specific = ["task=reward_model", "task.input=conversation", "task.template=plain", "method=full"]
    return [*specific, *common, *spec["overrides"]]


def child_ftcli(spec: dict[str, Any]) -> dict[str, Any]:
    from ftcli.cli.main import main
    meter = Meter(spec.get("profile"))
    meter_optimiser_steps(meter.begin, lambda loss: meter.end())
    overrides = ftcli_overrides(spec["part"], spec)
    if main(["train", *overrides]) != 0:
        raise SystemExit(f"ftcli train failed: {' '.join(overrides)}")
    return meter.result()


def no_special_tokens(tokenizer: Any) -> None:
    """`tokenizer(text)` adds nothing: ftcli's plain template writes no [CLS] or [SEP] around a text."""
    from tokenizers import processors

    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B")


def metered_trainer(base: type, meter: Meter) -> type:
    """`base` (a TRL trainer class) with `meter` counting each training batch before its step."""

    class Metered(base):  # type: ignore[misc, valid-type]
        def training_step(self, *args: Any, **kwargs: Any) -> Any:
            inputs = args[1] if len(args) > 1 else kwargs["inputs"]
            meter.begin([inputs])
            return super().training_step(*args, **kwargs)

    return Metered


def trl_common(spec: Mapping[str, Any]) -> dict[str, Any]:
    return dict(
        output_dir=spec["run"], per_device_train_batch_size=spec["batch_size"], learning_rate=spec["lr"],
        max_steps=spec["steps"], weight_decay=OPTIMISER["weight_decay"],
        warmup_steps=round(OPTIMISER["warmup_ratio"] * spec["steps"]), lr_scheduler_type="linear",
        max_grad_norm=OPTIMISER["max_grad_norm"], optim="adamw_torch_fused", logging_steps=10, save_strategy="no",
        eval_strategy="no", report_to=[], seed=spec["seed"], use_cpu=True, bf16=False, fp16=False,
        gradient_checkpointing=spec["gradient_checkpointing"], disable_tqdm=True, disable_dropout=True,
        max_length=spec["max_length"], dataloader_num_workers=0,
    )


def child_trl(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback

    meter = Meter(spec.get("profile"))

    class StepEnd(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            meter.end()

    expected = json.loads(Path(spec["expected"]).read_text())
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    if spec["part"] == "dpo":
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM
        from trl import DPOConfig, DPOTrainer

        no_special_tokens(tokenizer)
        rows = [json.loads(line) for line in Path(spec["train"]).read_text(encoding="utf-8").splitlines()]
        dataset = Dataset.from_list([{"prompt": plain_prompt(r["prompt"], r.get("system")), "chosen": r["chosen"],
                                      "rejected": r["rejected"]} for r in rows])
        model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
        args = DPOConfig(**trl_common(spec), beta=BETA, loss_type=["sigmoid"], truncation_mode="keep_start",
                         precompute_ref_log_probs=False)
        peft_config = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                 target_modules=LORA["targets"], task_type="CAUSAL_LM")
        trainer = metered_trainer(DPOTrainer, meter)(
            model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config,
            callbacks=[StepEnd()])
        limit = spec["max_length"]
        seen = [((p + c)[:limit], (p + r)[:limit]) for p, c, r in zip(
            trainer.train_dataset["prompt_ids"], trainer.train_dataset["chosen_ids"], trainer.train_dataset["rejected_ids"])]
    else:
        from transformers import AutoModelForSequenceClassification
        from trl import RewardConfig, RewardTrainer

        dataset = Dataset.from_dict({"chosen_ids": [c for c, _ in expected], "rejected_ids": [r for _, r in expected]})
        model = AutoModelForSequenceClassification.from_pretrained(spec["model"], num_labels=1, dtype=torch.float32)
        args = RewardConfig(**trl_common(spec))
        trainer = metered_trainer(RewardTrainer, meter)(
            model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=[StepEnd()])
        seen = list(zip(trainer.train_dataset["chosen_ids"], trainer.train_dataset["rejected_ids"]))
    differing = sum(list(s) != list(e) for s, e in zip(seen, expected)) + abs(len(seen) - len(expected))
    trainer.train()
    return meter.result(differing_pairs=differing)


CHILDREN = {"ftcli": child_ftcli, "trl": child_trl}


# ---------------------------------------------------------------- the parent: data, model, children, tables



def build_model(folder: Path) -> None:
    """The MiniLM-shaped Llama both sides load, with MiniLM's tokenizer (EOS: `[SEP]`)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ftcli.models.sources import embedded_tokenizer_path

    if (folder / "config.json").is_file():
        return
    tokenizer = AutoTokenizer.from_pretrained(embedded_tokenizer_path())
    tokenizer.eos_token = END_TOKEN
    config = LlamaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                         eos_token_id=tokenizer.eos_token_id, **MODEL_SHAPE)
    torch.manual_seed(MODEL_SEED)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def ftcli_features(part: str, model: Path, rows: list[dict[str, Any]], max_length: int) -> list[Any]:
    """ftcli's own encoding of `rows` for `part`: per row its features, or None for a row it refuses."""
    from transformers import AutoTokenizer

    from ftcli.config.schema import DataConfig
    from ftcli.errors import DataError
    from ftcli.tasks import TASKS

    entry = TASKS.get("preference" if part == "dpo" else "reward_model")
    settings: dict[str, Any] = {"max_length": max_length, "template": "plain"}
    if part == "reward":
        settings["input"] = "conversation"
    cfg, data = entry.config_cls(**settings), DataConfig()
    labels = entry.impl.label_names(None, cfg, data)
    task = entry.impl.bind(cfg, data, labels, AutoTokenizer.from_pretrained(model))
    features: list[Any] = []
    quiet = logging.getLogger("ftcli")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # no warning about each single row encoded
    try:
        for index, row in enumerate(rows):
            try:
                features.append(task.encode([row], f"record {index}")[0])
            except DataError:
                features.append(None)
    finally:
        quiet.setLevel(level)
    return features


def pair_ids(part: str, feature: Mapping[str, Any]) -> tuple[list[int], list[int]]:
    """The chosen and the rejected sequence of one of ftcli's features, as token ids."""
    if part == "dpo":
        return list(feature["chosen"][0]), list(feature["rejected"][0])
    return list(feature["input_ids"]), list(feature["rejected_input_ids"])


def has_reward_model() -> bool:
    from ftcli.tasks import TASKS

    return "reward_model" in TASKS




def run_part(part: str, args: argparse.Namespace, model: Path, rows: list[dict[str, Any]], workdir: Path) -> list[str]:
    features = ftcli_features(part, model, rows, args.max_length)
    kept = [(row, f) for row, f in zip(rows, features) if f is not None]
    train = kept[: args.max_pairs]
    dev = kept[args.max_pairs: args.max_pairs + DEV_PAIRS] or kept[:DEV_PAIRS]
    if len(train) < args.batch_size:
        raise SystemExit(f"only {len(train)} pairs fit in --max-length {args.max_length}; fewer than a batch")
    folder = workdir / part
    folder.mkdir(exist_ok=True)
    for name, chosen in (("train.jsonl", train), ("dev.jsonl", dev)):
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r, _ in chosen), encoding="utf-8")
    (folder / "expected.json").write_text(json.dumps([pair_ids(part, f) for _, f in train]))
    spec = {"part": part, "model": str(model), "train": str(folder / "train.jsonl"), "dev": str(folder / "dev.jsonl"),
            "expected": str(folder / "expected.json"), "steps": args.steps, "batch_size": args.batch_size,
            "max_length": args.max_length, "lr": args.lr or DEFAULT_LR[part], "seed": args.seed,
            "gradient_checkpointing": args.gradient_checkpointing, "overrides": args.overrides}
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for repeat in range(args.repeats):
        for side in order(repeat):
            label = f"{part}-{side}-{repeat + 1}"
            profile = str(folder / f"{label}.profile.txt") if args.profile else None
            result = measure(__file__, side, {**spec, "run": str(folder / label), "profile": profile}, folder, label)
            results[side].append(result)
            print(f"  {label}: {result['tokens'] / result['seconds']:,.0f} tokens/s, {result['steps']} steps in "
                  f"{result['seconds']:.1f} s, peak RSS {result['peak_rss_mb']:,.0f} MB", flush=True)
    differing = max(r.get("differing_pairs", 0) for r in results["trl"])
    lines = table(part, results)
    sequences = [len(ids) for _, f in train for ids in pair_ids(part, f)]
    lines.append(f"\n{len(train)} pairs, {args.steps} steps of {args.batch_size} pairs, sequences of "
                 f"{min(sequences)}–{max(sequences)} tokens (median {statistics.median(sequences):.0f}); "
                 + ("TRL trained on exactly ftcli's token ids" if not differing
                    else f"**{differing} of {len(train)} pairs tokenised differently on the TRL side**"))
    return lines



def main_bench(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        spec = json.loads(Path(args.spec).read_text())
        result_file(Path(args.spec)).write_text(json.dumps(CHILDREN[args.child](spec)))
        return 0
    if not args.data.is_file():
        print(f"{args.data} not found; pass --data (a jsonl of prompt/chosen/rejected pairs)", file=sys.stderr)
        return 2
    try:
        import trl  # noqa: F401
    except ImportError:
        print("TRL is not installed: pip install -e '.[bench]' (best in a venv of its own)", file=sys.stderr)
        return 2
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # no progress bar writing the model, no warning about long rows
    hf_logging.disable_progress_bar()
    workdir = args.out or Path(tempfile.mkdtemp(prefix="ftcli-bench-trl-"))
    workdir.mkdir(parents=True, exist_ok=True)
    model = workdir / "model"
    build_model(model)
    rows = read_jsonl(args.data)
    print(f"{library_versions(CHECKOUT, LIBRARIES)}\nCPU, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}, fp32; "
          f"runs in {workdir}", flush=True)
    for part in args.parts:
        if part == "reward" and not has_reward_model():
            print("\n## Reward model\n\nskipped: this ftcli has no task=reward_model yet", flush=True)
            continue
        print(f"\n## {'DPO with LoRA' if part == 'dpo' else 'Reward model'}\n", flush=True)
        lines = run_part(part, args, model, rows, workdir)
        print("\n" + "\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
