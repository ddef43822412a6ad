"""CoNLL column files as they come, read into the same sentences and, once their tags are in one
scheme, the same entities; a file that is not CoNLL columns is named with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from xp_plugins.conll_files import ConllError, read_sentences
from xp_plugins.tasks.tag_schemes import scheme_of, to_iob2

SLICE = Path(__file__).resolve().parents[1] / "data" / "conll2003" / "train.txt"


def as_iob1(tags: list[str]) -> list[str]:
    """IOB2 tags as IOB1 writes them: `B-` only for an entity right after one of the same type."""
    written = []
    for position, tag in enumerate(tags):
        follows_same_type = position > 0 and tags[position - 1] != "O" and tags[position - 1][2:] == tag[2:]
        written.append(
            "B-" + tag[2:] if tag.startswith("B-") and follows_same_type else "I-" + tag[2:] if tag != "O" else "O"
        )
    return written


def as_bioes(tags: list[str]) -> list[str]:
    written = []
    for position, tag in enumerate(tags):
        ends = position + 1 == len(tags) or not tags[position + 1].startswith("I-")
        if tag == "O":
            written.append(tag)
        elif tag.startswith("B-"):
            written.append(("S-" if ends else "B-") + tag[2:])
        else:
            written.append(("E-" if ends else "I-") + tag[2:])
    return written


def test_the_shipped_slice_reads_as_the_readme_says(tmp_path):
    sentences = read_sentences(SLICE)
    assert len(sentences) > 100
    assert sentences[0].tokens[:2] == ("Germany", "imported")
    assert sentences[0].tags[:2] == ("B-LOC", "O")
    assert sentences[0].line == 1
    assert scheme_of(sentence.tags for sentence in sentences) == "IOB2"


def test_both_layouts_give_the_same_sentences_and_entities(tmp_path):
    """2 tab-separated columns, IOB2, CRLF; and 4 space-separated columns, IOB1, -DOCSTART-."""
    sentences = read_sentences(SLICE)
    tab = tmp_path / "tab.txt"
    tab.write_bytes(
        "".join(
            "".join(f"{token}\t{tag}\r\n" for token, tag in zip(s.tokens, s.tags, strict=True)) + "\r\n"
            for s in sentences
        ).encode()
    )
    spaces = tmp_path / "spaces.txt"
    lines = ["-DOCSTART- -X- -X- O", ""]
    for number, sentence in enumerate(sentences):
        if number and number % 7 == 0:
            lines += ["-DOCSTART- -X- -X- O", ""]
        lines += [
            f"{token} NN I-NP {tag}" for token, tag in zip(sentence.tokens, as_iob1(list(sentence.tags)), strict=True)
        ]
        lines.append("")
    spaces.write_text("\n".join(lines), encoding="utf-8")

    from_tab, from_spaces = read_sentences(tab), read_sentences(spaces)
    assert [s.tokens for s in from_tab] == [s.tokens for s in from_spaces] == [s.tokens for s in sentences]
    assert scheme_of(s.tags for s in from_spaces) == "IOB1"
    assert (
        [to_iob2(s.tags) for s in from_spaces]
        == [to_iob2(s.tags) for s in from_tab]
        == [list(s.tags) for s in sentences]
    )


def test_bioes_reads_as_iob2():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "I-LOC", "O", "B-ORG"]
    assert scheme_of([as_bioes(tags)]) == "BIOES"
    assert to_iob2(as_bioes(tags)) == tags


def test_iob1_opens_an_entity_with_i_and_separates_neighbours_with_b():
    assert to_iob2(["I-ORG", "I-ORG", "B-ORG", "O", "I-PER", "I-LOC"]) == [
        "B-ORG",
        "I-ORG",
        "B-ORG",
        "O",
        "B-PER",
        "B-LOC",
    ]


@pytest.mark.parametrize(
    ("content", "line", "says"),
    [
        ("EU\tB-ORG\nrejects\n", 2, "one column"),
        ("EU B-ORG\nrejects VBZ O\n", 2, "3 columns where the file's first token line has 2"),
        ("EU\tB-ORG\n\nPeter\tPER\n", 3, 'tag "PER" is in no scheme'),
        ("EU\tB-ORG\nto\tX-ORG\n", 2, 'tag "X-ORG"'),
    ],
)
def test_a_file_that_is_not_conll_columns_is_named_with_its_line(tmp_path, content, line, says):
    path = tmp_path / "train.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConllError) as error:
        read_sentences(path)
    assert str(error.value).startswith(f"{path}:{line}: ")
    assert says in str(error.value)


def test_a_token_may_hold_spaces_in_a_tab_separated_file(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("New York\tB-LOC\nis\tO\n", encoding="utf-8")
    [sentence] = read_sentences(path)
    assert sentence.tokens == ("New York", "is")
