"""Everything a person sees: the start summary, progress, tables and error panels.

The only module that imports rich. Status output goes to stdout, or to stderr when a command
writes its data to stdout (`predict output=-`), so piped output stays clean. Each status line is
also logged as plain text to the `ftcli.ui` logger, whose records reach the job's log file
(`<run dir>/train.log`) and not the terminal, which has them already (`NotPrinted`).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

# emoji=False: model names such as `warmstart:package:...` hold `:name:` runs that rich would draw as emoji
console = Console(highlight=False, emoji=False)
status_log = logging.getLogger(__name__)
status_log.addHandler(logging.NullHandler())  # outside a job nothing is logged, not even to logging's last resort
_rank_label = ""  # "rank N: " on the ranks of a distributed run but the main one (`mute`)


class NotPrinted(logging.Filter):
    """Keeps the `ftcli.ui` records off a console handler: they were printed already."""

    def filter(self, entry: logging.LogRecord) -> bool:
        return entry.name != status_log.name


def _log(message: str, markup: bool = True, level: int = logging.INFO) -> None:
    """`message` as plain text in the job's log (rich markup removed)."""
    status_log.log(level, Text.from_markup(message).plain if markup else message)


def use_stderr() -> None:
    """Send status output to stderr for the rest of the command (`ftcli.cli` calls `use_stdout` when it ends)."""
    global console
    if _rank_label:  # a muted rank stays muted
        return
    console = Console(stderr=True, highlight=False, emoji=False)


def mute(rank: int) -> None:
    """Print nothing but errors for the rest of this process: one of the ranks of a distributed run
    other than the main one, which alone reports progress. Its error panels name the rank."""
    global console, _rank_label
    console = Console(quiet=True)
    _rank_label = f"rank {rank}: "


def use_stdout() -> None:
    """Status output back on stdout, where each command starts: a `predict output=-` run in this
    process earlier does not move the next command's output."""
    global console
    if _rank_label:  # a muted rank stays muted
        return
    console = Console(highlight=False, emoji=False)


def print_summary(title: str, rows: dict[str, str]) -> None:
    """What a command is about to do: a title, then one aligned `name  value` line per row.

    The few settings a person checks before a run; the whole config is in `--cfg job` and in the
    run's config.yaml.
    """
    width = max(map(len, rows), default=0)
    console.print(f"[bold]{escape(title)}[/]")
    for name, value in rows.items():
        console.print(f"  [cyan]{name.ljust(width)}[/]  {escape(value)}")
    _log("\n".join([title, *(f"  {name.ljust(width)}  {value}" for name, value in rows.items())]), markup=False)


def info(message: str, markup: bool = True) -> None:
    console.print(message, markup=markup)
    _log(message, markup)


def print_parameters(counts: dict[str, Any], method: str) -> None:
    info(
        f"[bold]{method}[/]: {counts['trainable']:,} trainable parameters "
        f"({counts['trainable_percent']:.2f}% of {counts['total']:,}); "
        f"{counts['trainable_without_head']:,} without the task head"
    )


def print_costs(train: dict[str, Any]) -> None:
    """Wall time, speed, peak memory and artefact size of a finished run, on one line."""
    gpu = f", peak GPU {train['peak_gpu_mb']:,.0f} MB" if "peak_gpu_mb" in train else ""
    artifact = f", artefact {train['artifact_mb']:,.2f} MB" if "artifact_mb" in train else ""
    info(
        f"wall {train['wall_seconds']:,.1f} s ({_speed(train)}), "
        f"peak RSS {train['peak_rss_mb']:,.0f} MB{gpu}{artifact}",
        markup=False,
    )


def _speed(train: dict[str, Any]) -> str:
    """Samples/s, and where the run counted them, tokens/s, the padding share and MFU."""
    parts = [f"{train['samples_per_second']:,.1f} samples/s"]
    if "tokens_per_second" in train:
        parts.append(f"{train['tokens_per_second']:,.0f} tokens/s")
    if "padding_fraction" in train:
        parts.append(f"padding {train['padding_fraction']:.1%}")
    if train.get("mfu") is not None:
        parts.append(f"MFU {train['mfu']:.1%}")
    return ", ".join(parts)


def print_metrics(metrics: dict[str, dict[str, Any]], title: str = "metrics") -> None:
    """One column per split; scalar metrics only (nested ones are in metrics.json)."""
    splits = list(metrics)
    names = [k for k in dict.fromkeys(k for s in splits for k in metrics[s]) if _scalar_in_any(metrics, k)]
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    for name in names:
        table.add_row(name, *[_fmt(metrics[s].get(name)) for s in splits])
    console.print(table)
    _log("\n".join([f"{title}:", *(f"  {split}: {_scalars(metrics[split], names)}" for split in splits)]), markup=False)


def _scalars(values: dict[str, Any], names: list[str]) -> str:
    """`name value` pairs of the scalar metrics among `names`, for the log."""
    return "  ".join(f"{name} {_fmt(values[name])}" for name in names if isinstance(values.get(name), (int, float)))


def _scalar_in_any(metrics: dict[str, dict[str, Any]], key: str) -> bool:
    return any(isinstance(m.get(key), (int, float)) for m in metrics.values())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def print_error(title: str, message: str, hint: str | None) -> None:
    """The error panel; message and hint are shown as written (a `[query,value]` in them is text, not markup)."""
    body = escape(message) + (f"\n\n[bold]fix:[/] {escape(hint)}" if hint else "")
    Console(stderr=True, highlight=False, emoji=False).print(Panel(body, title=f"[bold red]{escape(_rank_label)}{title}[/]", title_align="left", expand=False))
    _log(f"{title}: {message}" + (f" (fix: {hint})" if hint else ""), markup=False, level=logging.ERROR)


def print_usage(commands: dict[str, str]) -> None:
    console.print("[bold]usage:[/] ftcli COMMAND " + escape("[key=value ...] [hydra flags]") + "\n")
    table = Table(show_header=False, box=None, padding=(0, 2))
    for name, summary in commands.items():
        table.add_row(f"[bold cyan]{name}[/]", summary)
    console.print(table)
    console.print(
        "\n`ftcli COMMAND --help` lists its config groups and settings; "
        "`ftcli COMMAND --cfg job` prints the composed config without running."
    )


def debug_enabled() -> bool:
    return os.environ.get("FTCLI_DEBUG", "") not in ("", "0") or os.environ.get("HYDRA_FULL_ERROR", "") == "1"


class TrainProgress:
    """A progress bar with loss, lr, samples/s and tokens/s; evaluation results print above it."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]train[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: Any = None
        self.last_print = 0.0

    def on_train_begin(self, total_steps: int) -> None:
        _log(f"training: {total_steps} steps", markup=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=total_steps, status="")

    def on_step(self, step: int, record: dict[str, Any] | None) -> None:
        status = None
        if record is not None:
            status = f"loss {record['loss']:.4f}  lr {record['lr']:.2e}  {record['samples_per_second']:.1f} samples/s"
            if "tokens_per_second" in record:
                status += f"  {record['tokens_per_second']:,.0f} tokens/s"
            _log(f"step {step}: {status}", markup=False)
        if status:
            self.progress.update(self.task, completed=step, status=status)
        else:
            self.progress.update(self.task, completed=step)
        if record is not None and not console.is_terminal and time.monotonic() - self.last_print > 5:
            self.progress.console.print(f"step {step}: {status}")
            self.last_print = time.monotonic()

    def on_evaluate(self, step: int, record: dict[str, Any]) -> None:
        scalars = {k: v for k, v in record["eval"].items() if isinstance(v, (int, float))}
        shown = "  ".join(f"{k} {v:.4f}" for k, v in scalars.items() if k in ("loss", "accuracy", "f1_macro", "f1"))
        self.progress.console.print(f"[bold]eval[/] step {step} (epoch {record['epoch']:.2f}): {shown}")
        _log(f"eval step {step} (epoch {record['epoch']:.2f}): {_scalars(scalars, list(scalars))}", markup=False)

    def on_train_end(self) -> None:
        self.progress.stop()


def warn(message: str) -> None:
    """A warning in the status output (`message` is plain text), logged at WARNING level too."""
    console.print(f"[yellow]warning:[/] {escape(message)}")
    _log(message, markup=False, level=logging.WARNING)
