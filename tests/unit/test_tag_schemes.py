"""Tests of ftcli.tasks.tag_schemes: reading tags, detecting the scheme, normalising to IOB2, label sets."""

from __future__ import annotations

import pytest

from ftcli.tasks.tag_schemes import (
    TagError,
    TagScheme,
    detect_scheme,
    inside_of,
    iob2_label_names,
    iob2_labels,
    parse_tag,
    to_iob2,
)


def test_iob1_to_iob2():
    # IOB1 starts an entity with I-; B- only separates two adjacent entities of one type.
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG"]
    assert to_iob2(iob1, TagScheme.iob1) == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG"]


def test_iobes_to_iob2():
    iobes = ["S-PER", "O", "B-ORG", "I-ORG", "E-ORG", "S-LOC", "S-LOC", "B-MISC", "E-MISC"]
    assert to_iob2(iobes, TagScheme.iobes) == [
        "B-PER", "O", "B-ORG", "I-ORG", "I-ORG", "B-LOC", "B-LOC", "B-MISC", "I-MISC",
    ]


def test_iobes_entity_after_end_tag_starts_anew():
    # E- closes the entity, so an I- of the same type right after it starts a new one
    assert to_iob2(["B-PER", "E-PER", "I-PER"], TagScheme.iobes) == ["B-PER", "I-PER", "B-PER"]


def test_iob2_is_unchanged():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert to_iob2(tags, TagScheme.iob2) == tags
    assert to_iob2(tags, TagScheme.auto) == tags


def test_auto_accepts_every_scheme():
    assert to_iob2(["S-PER", "I-LOC"]) == ["B-PER", "B-LOC"]


def test_types_with_spaces_and_dashes():
    assert to_iob2(["I-WORK OF ART", "I-WORK OF ART", "B-X-Y"]) == ["B-WORK OF ART", "I-WORK OF ART", "B-X-Y"]


@pytest.mark.parametrize(
    ("sequences", "scheme"),
    [
        ([["B-PER", "I-PER", "O"], ["O", "B-LOC"]], TagScheme.iob2),
        ([["B-PER", "I-PER"], ["O", "I-LOC"]], TagScheme.iob1),
        ([["B-PER", "I-PER"], ["B-LOC", "E-LOC"]], TagScheme.iobes),
        ([["S-PER"]], TagScheme.iobes),
        ([["O", "O"], []], TagScheme.iob2),
    ],
)
def test_detect_scheme(sequences, scheme):
    assert detect_scheme(sequences) is scheme


@pytest.mark.parametrize("tag", ["X-PER", "B-", "PER", "b-per", "B_PER", "", "B- PER"])
def test_invalid_tags_are_rejected_with_their_position(tag):
    with pytest.raises(TagError) as info:
        to_iob2(["O", "B-PER", tag])
    assert info.value.position == 2
    assert info.value.message == f"{tag!r} is not an entity tag"
    assert "B-, I-, E- or S-" in info.value.hint


@pytest.mark.parametrize("scheme", [TagScheme.iob1, TagScheme.iob2])
def test_end_and_single_tags_need_the_iobes_scheme(scheme):
    with pytest.raises(TagError) as info:
        to_iob2(["O", "S-PER"], scheme)
    assert info.value.position == 1
    assert info.value.message == f"'S-PER' is not a tag of the {scheme.value.upper()} scheme (task.scheme={scheme.value})"
    assert "task.scheme=iobes" in info.value.hint


def test_parse_tag():
    assert parse_tag("O") == ("O", None)
    assert parse_tag("B-PER") == ("B", "PER")
    assert parse_tag("E-LOC") == ("E", "LOC")


def test_iob2_labels_are_outside_then_each_type_sorted():
    assert iob2_labels(["PER", "LOC", "PER"]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def test_configured_iobes_names_become_iob2_in_order():
    names = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    assert iob2_label_names(names) == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_configured_iob1_names_gain_their_begin_tags():
    assert iob2_label_names(["O", "I-PER", "I-LOC", "B-LOC"]) == ["O", "I-PER", "I-LOC", "B-LOC", "B-PER"]


def test_inside_of_maps_begin_to_inside():
    labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert inside_of(labels) == [0, 2, 2, 4, 4]
