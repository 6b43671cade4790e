"""Entity tagging schemes: checking tags, telling IOB1, IOB2 and IOBES apart, normalising to IOB2.

The model always learns IOB2 (BIO) tags, whatever scheme the data is written in, so one label
set, one metric and one span decoder serve every input:

- IOB2: `B-TYPE` starts an entity, `I-TYPE` continues it, `O` is outside any entity.
- IOB1: an entity starts with `I-`; `B-` only marks the start of an entity that directly
  follows another of the same type.
- IOBES: IOB2 plus `E-` (the last token of an entity) and `S-` (a single-token entity).

All three reduce to IOB2 by one rule: `B-`/`S-` start an entity, `I-`/`E-` continue the entity
before them when it has the same type and start one otherwise, and `E-`/`S-` close it. An
`I-` that starts an entity is IOB1's convention, and also how conlleval and seqeval read a
malformed IOB2 sequence, so the rule needs no per-scheme branches; the scheme only decides which
prefixes are allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum

OUTSIDE = "O"
_TAG = re.compile(r"([BIES])-(\S(?:.*\S)?)")


class TagScheme(str, Enum):
    auto = "auto"  # accept B-/I-/E-/S- and normalise whatever the data uses
    iob1 = "iob1"
    iob2 = "iob2"
    iobes = "iobes"


PREFIXES = {
    TagScheme.auto: "BIES",
    TagScheme.iob1: "BI",
    TagScheme.iob2: "BI",
    TagScheme.iobes: "BIES",
}


class TagError(ValueError):
    """A tag that cannot be read, at `position` in its sequence; callers add the file and record."""

    def __init__(self, position: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message
        self.hint = hint


def parse_tag(tag: str, position: int = 0) -> tuple[str, str | None]:
    """`("O", None)` for the outside tag, else `(prefix, entity type)`; a TagError for anything else."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    match = _TAG.fullmatch(tag)
    if match is None:
        raise TagError(
            position,
            f"{tag!r} is not an entity tag",
            hint="tags are O, or B-, I-, E- or S- followed by the entity type (B-PER, I-LOC)",
        )
    return match.group(1), match.group(2)


def detect_scheme(sequences: Iterable[list[str]]) -> TagScheme:
    """The scheme a set of valid tag sequences is written in.

    IOBES when any tag is `E-` or `S-`; IOB1 when some entity starts with `I-`; else IOB2
    (sequences that fit both IOB1 and IOB2 read the same either way).
    """
    iob1 = False
    for tags in sequences:
        previous = None
        for position, tag in enumerate(tags):
            prefix, kind = parse_tag(tag, position)
            if prefix in ("E", "S"):
                return TagScheme.iobes
            if prefix == "I" and kind != previous:
                iob1 = True
            previous = kind
    return TagScheme.iob1 if iob1 else TagScheme.iob2


def to_iob2(tags: list[str], scheme: TagScheme = TagScheme.auto) -> list[str]:
    """`tags` rewritten in IOB2, after checking each is a tag `scheme` allows.

    Also repairs a predicted IOB2 sequence: an `I-` that continues nothing becomes `B-`.
    """
    allowed = PREFIXES[scheme]
    result, open_type = [], None  # open_type: the type of the entity the previous tag leaves open
    for position, tag in enumerate(tags):
        prefix, kind = parse_tag(tag, position)
        if prefix == OUTSIDE:
            result.append(OUTSIDE)
            open_type = None
            continue
        if prefix not in allowed:
            raise TagError(
                position,
                f"{tag!r} is not a tag of the {scheme.value.upper()} scheme (task.scheme={scheme.value})",
                hint="set task.scheme=iobes (or auto) for E-/S- tags, or fix the tag",
            )
        continues = prefix in ("I", "E") and kind == open_type
        result.append(f"{'I' if continues else 'B'}-{kind}")
        open_type = None if prefix in ("E", "S") else kind
    return result


def iob2_labels(types: Iterable[str]) -> list[str]:
    """The IOB2 label set for some entity types: `O`, then `B-` and `I-` of each type, types sorted."""
    return [OUTSIDE] + [f"{prefix}-{kind}" for kind in sorted(set(types)) for prefix in ("B", "I")]


def iob2_label_names(names: list[str]) -> list[str]:
    """Configured label names in any scheme, as the IOB2 label set the model uses, order kept.

    `E-X` becomes `I-X` and `S-X` becomes `B-X`; duplicates go, and each type gets both its `B-`
    and `I-` tag (IOB1 label lists may lack `B-`), appended at the end when missing.
    """
    result: list[str] = []
    types: list[str] = []
    for position, name in enumerate(names):
        prefix, kind = parse_tag(name, position)
        tag = OUTSIDE if kind is None else f"{'B' if prefix in ('B', 'S') else 'I'}-{kind}"
        if tag not in result:
            result.append(tag)
        if kind is not None and kind not in types:
            types.append(kind)
    for kind in types:
        result += [tag for tag in (f"B-{kind}", f"I-{kind}") if tag not in result]
    return result


def inside_of(labels: list[str]) -> list[int]:
    """Per label id, the id a later sub-token of the same word gets: `B-X` → `I-X`, others unchanged."""
    index = {name: i for i, name in enumerate(labels)}
    return [index.get("I-" + name[2:], i) if name.startswith("B-") else i for i, name in enumerate(labels)]
