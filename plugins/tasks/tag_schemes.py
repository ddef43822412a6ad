"""Entity tags as files write them (IOB1, IOB2, BIOES) read into one scheme, IOB2, the one
seqeval scores by default: the same sentence scores the same whatever scheme its file used.

IOB2 opens every entity with `B-`; IOB1 opens one with `I-` and keeps `B-` for an entity right
after another of the same type; BIOES adds `E-` (an entity's last token) and `S-` (a one-token
entity). Reading a tag as "opens an entity" or "continues the one before" is enough for all
three: a tag continues an entity only when it is `I-` or `E-` of the type the previous tag is
inside, and that previous entity has not ended (`E-`, `S-`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

OUTSIDE = "O"
_TAG = re.compile(r"([BIES])-(\S+)")
SCHEME_HELP = "O, or B-, I-, E- or S- followed by the entity type (IOB1, IOB2, BIOES)"


@functools.lru_cache(maxsize=4096)  # a data set has a few distinct tags, read hundreds of thousands of times
def split_tag(tag: str) -> tuple[str, str] | None:
    """("B", "PER") for `B-PER`; None for `O`; a ValueError for a tag in no scheme."""
    if tag == OUTSIDE:
        return None
    match = _TAG.fullmatch(tag)
    if match is None:
        raise ValueError(f'tag "{tag}" is in no scheme xp reads: expected {SCHEME_HELP}')
    return match.group(1), match.group(2)


def to_iob2(tags: Sequence[str]) -> list[str]:
    """One sentence's tags in IOB2; a ValueError naming the first tag in no scheme."""
    converted, open_type = [], None  # the type of the entity the previous tag leaves open
    for tag in tags:
        parts = split_tag(tag)
        if parts is None:
            converted.append(OUTSIDE)
            open_type = None
            continue
        prefix, entity_type = parts
        continues = prefix in "IE" and open_type == entity_type
        converted.append(("I-" if continues else "B-") + entity_type)
        open_type = None if prefix in "ES" else entity_type
    return converted


def scheme_of(sentences: Iterable[Sequence[str]]) -> str:
    """The scheme the tags were written in, to say so: "BIOES" when an `E-` or `S-` tag occurs,
    "IOB1" when an `I-` tag opens an entity, else "IOB2" (also for tags that are all `O`)."""
    opens_with_inside = False
    for tags in sentences:
        open_type = None
        for tag in tags:
            parts = split_tag(tag)
            if parts is None:
                open_type = None
                continue
            prefix, entity_type = parts
            if prefix in "ES":
                return "BIOES"
            opens_with_inside |= prefix == "I" and open_type != entity_type
            open_type = entity_type
    return "IOB1" if opens_with_inside else "IOB2"


def types_of(tags: Iterable[str]) -> set[str]:
    """The entity types IOB2 tags name."""
    return {tag[2:] for tag in tags if tag != OUTSIDE}
