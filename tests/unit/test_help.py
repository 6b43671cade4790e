"""Tests of ftcli.cli.help: each command's `--help` ends with examples of that command."""

from __future__ import annotations

import pytest

from ftcli.cli.help import print_command_help


@pytest.mark.parametrize(("command", "usage"), [("train", "train"), ("eval", "eval"), ("predict", "predict"),
                                                ("export", "export"), ("ilf", "ilf"),
                                                ("eval_prompting", "eval task=prompting")])
def test_examples_are_the_commands_own(config_dir, registered_configs, capsys, monkeypatch, command, usage):
    from rich.console import Console

    from ftcli import ui

    monkeypatch.setattr(ui, "console", Console(width=200, highlight=False))  # no wrapped lines
    print_command_help(command, config_dir, usage)
    examples = capsys.readouterr().out.split("Examples:")[-1].strip().splitlines()
    assert examples
    assert all(f"ftcli {usage}" in line for line in examples), examples
