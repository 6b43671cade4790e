"""Tests of ftcli.registry: registration, lookup with did-you-mean, and the task/method registries."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ftcli.errors import ConfigError
from ftcli.methods import METHODS
from ftcli.registry import Entry, Registry, did_you_mean
from ftcli.tasks import TASKS


@dataclass
class WidgetConfig:
    size: int = 1


@pytest.fixture
def widgets():
    registry = Registry("widget")
    registry.register("spanner", WidgetConfig)("spanner-impl")
    registry.register("hammer", WidgetConfig)("hammer-impl")
    return registry


def test_get_returns_entry(widgets):
    assert widgets.get("hammer") == Entry("hammer", WidgetConfig, "hammer-impl")


def test_register_returns_the_implementation():
    registry = Registry("widget")

    @registry.register("thing", WidgetConfig)
    class Thing:
        pass

    assert registry.get("thing").impl is Thing


def test_names_sorted_membership_and_iteration(widgets):
    assert widgets.names() == ["hammer", "spanner"]
    assert "hammer" in widgets and "drill" not in widgets
    assert [entry.name for entry in widgets] == ["spanner", "hammer"]  # registration order


def test_unknown_name_with_did_you_mean(widgets):
    with pytest.raises(ConfigError) as info:
        widgets.get("hamer")
    assert info.value.message == "unknown widget 'hamer' (did you mean 'hammer'?); choose one of: hammer, spanner"


def test_unknown_name_without_close_match(widgets):
    with pytest.raises(ConfigError) as info:
        widgets.get("drill")
    assert info.value.message == "unknown widget 'drill'; choose one of: hammer, spanner"


def test_duplicate_registration_is_refused(widgets):
    with pytest.raises(ValueError, match="widget 'hammer' is registered twice"):
        widgets.register("hammer", WidgetConfig)("other")
    assert widgets.get("hammer").impl == "hammer-impl"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("lorra", " (did you mean 'lora'?)"), ("ful", " (did you mean 'full'?)"), ("xyz", ""), ("", "")],
)
def test_did_you_mean(name, expected):
    assert did_you_mean(name, ["freeze", "full", "lora"]) == expected


def test_ftcli_registries():
    assert METHODS.names() == [
        "adapter", "bitfit", "freeze", "full", "ia3", "ln_tuning", "lora", "mixed", "p_tuning", "prefix_tuning",
        "prompt_tuning",
    ]
    assert {"ner", "pair_classification", "qa", "sentiment", "text_classification"} <= set(TASKS.names())
    with pytest.raises(ConfigError, match=r"unknown method 'lorra' \(did you mean 'lora'\?\)"):
        METHODS.get("lorra")
