"""Property-based tests: whatever the input, ftcli answers with rows, features or its own error.

Three entry points take input a person controls: the data readers (any bytes in a file or on
stdin), the column mapping of the tasks (any JSON-shaped row), and the config checker (any
override string). Each property feeds them random input and accepts exactly two outcomes: a
result of the documented shape, or an `FtcliError` (which the CLI shows as a panel with a hint).
Anything else (a raw KeyError, TypeError, UnicodeDecodeError or a Hydra/OmegaConf exception) is
a traceback for the person and fails the test.

Every property is derandomized: CI runs the same examples on every run, so a failure reproduces
exactly; exploring further is a matter of raising `max_examples` locally. The regression tests at
the end pin the crashes these properties found.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftcli.config.schema import DataConfig
from ftcli.data.readers import CONLL_TAGS, CONLL_TOKENS, DOCSTART, SUFFIXES, read_rows
from ftcli.data.splits import Splits, require_columns, text_field
from ftcli.errors import ConfigError, DataError, FtcliError
from ftcli.tasks.classification import (
    ClassificationConfig,
    PairClassificationConfig,
    Problem,
    SequenceClassification,
)
from ftcli.tasks.ner import ALIGNMENT, NerConfig, TokenClassification
from ftcli.tasks.qa import QaConfig, QuestionAnswering
from ftcli.tasks.qa_windows import WINDOW
from ftcli.tasks.tag_schemes import TagScheme


def fuzz(examples: int) -> settings:
    """Hypothesis settings: a fixed example count, no per-example deadline (the first one loads a
    tokenizer or composes a config), and the same examples on every run."""
    return settings(max_examples=examples, deadline=None, derandomize=True)


@functools.cache
def tokenizer():
    """The embedded MiniLM tokenizer (a fast one), loaded once for every example."""
    from transformers import AutoTokenizer

    from ftcli.models.sources import embedded_tokenizer_path

    return AutoTokenizer.from_pretrained(embedded_tokenizer_path())


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """One folder for the whole module; each example overwrites its own file in it."""
    return tmp_path_factory.mktemp("fuzz")


def assert_rows(rows) -> None:
    """What every reader promises: a list of dicts whose strings (keys too) are valid Unicode text."""
    assert isinstance(rows, list)
    for row in rows:
        assert isinstance(row, dict)
        assert_text(row)


def assert_text(value) -> None:
    if isinstance(value, str):
        value.encode("utf-8")  # a lone surrogate cannot be encoded, and no tokenizer takes it
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_text(key)
            assert_text(item)
    elif isinstance(value, list):
        for item in value:
            assert_text(item)


# --- readers -------------------------------------------------------------------------------------

AWKWARD_BYTES = [
    b"\x00", codecs.BOM_UTF8, b"\r", b"\r\n", b"\n", b"\n\n", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x80\xa8",
    b'"', b",", b"\t", b" ", b"{", b"}", b"[", b"]", b":", b"\\", b"\\ud800", b"-DOCSTART-", b"B-PER", b"O",
    b'{"text": "a", "label": 1}', b'"text","label"', b"1" * 20,
]
raw_bytes = st.lists(st.one_of(st.binary(max_size=6), st.sampled_from(AWKWARD_BYTES)), max_size=24).map(b"".join)
def reads_or_refuses(path: Path) -> None:
    """`read_rows` gives well-formed rows, or a DataError that names the setting and the file."""
    try:
        rows = read_rows(str(path), "data.train_file")
    except DataError as exc:
        assert f"data.train_file={path}" in exc.message
        return
    assert_rows(rows)


file_suffixes = st.sampled_from(sorted(SUFFIXES) + [".JSONL", ".Csv", ".xml", ""])


@fuzz(150)
@given(suffix=file_suffixes, raw=raw_bytes)
def test_any_bytes_in_any_supported_file_give_rows_or_data_error(scratch, suffix, raw):
    path = scratch / f"any{suffix}"
    path.write_bytes(raw)
    reads_or_refuses(path)


@fuzz(80)
@given(raw=raw_bytes, errors=st.sampled_from(["strict", "surrogateescape"]))
def test_any_bytes_on_stdin_give_rows_or_data_error(raw, errors):
    """Python reads stdin strictly as UTF-8, or with surrogateescape under the C/POSIX locale."""
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", errors=errors, newline=None)
    try:
        rows = read_rows("-", "input", text_column="body")
    except DataError as exc:
        assert exc.message.startswith("input=")
        return
    finally:
        sys.stdin = saved
    assert_rows(rows)


def json_text(scalars: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """JSON documents written out by hand, so they can hold what json.dumps never writes."""
    keys = st.one_of(st.sampled_from(["text", "label", "data", "tokens"]), st.text(max_size=4)).map(json.dumps)
    keys = st.one_of(keys, st.sampled_from(['"\\udc80"', '"k\\ud83d\\ude00"']))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
            st.lists(st.tuples(keys, inner), max_size=4).map(
                lambda pairs: "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"
            ),
        ),
        max_leaves=12,
    )


json_scalars = st.one_of(
    st.sampled_from(["null", "true", "false", "NaN", "-Infinity", "1e999", "-0"]),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.text(max_size=10).map(json.dumps),
    # half of a UTF-16 surrogate pair, a whole pair, an escaped backslash before "ud800"
    st.sampled_from(['"\\ud800"', '"a\\uDC00b"', '"\\ud83d\\ude00"', '"\\\\ud800"', '"\\ud83d"']),
    # integers at and past the interpreter's limit on digits in int("...")
    st.sampled_from([20, 4300, 4301, 6000]).map(lambda digits: "7" * digits),
)
nested_deeply = st.tuples(st.sampled_from(["[", '{"a":']), st.sampled_from([10, 5_000, 100_000])).map(
    lambda opener: opener[0] * opener[1]
)


@fuzz(120)
@given(
    documents=st.lists(st.one_of(json_text(json_scalars), nested_deeply), min_size=1, max_size=4),
    layout=st.sampled_from(["jsonl", "json", "json-data"]),
)
def test_any_json_gives_text_rows_or_data_error(scratch, documents, layout):
    if layout == "jsonl":
        path, text = scratch / "d.jsonl", "\n".join(documents)
    elif layout == "json":
        path, text = scratch / "d.json", documents[0]
    else:
        path, text = scratch / "d.json", '{"data": [' + ",".join(documents) + "]}"
    path.write_text(text, encoding="utf-8")
    reads_or_refuses(path)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8,
)
json_rows = st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=4), max_size=5)


@fuzz(60)
@given(rows=json_rows, layout=st.sampled_from(["list", "data", "columns"]))
def test_json_documents_of_objects_round_trip(scratch, rows, layout):
    path = scratch / "objects.json"
    if layout == "columns":
        # every row with the same keys, none of them "data" (that key names the {"data": [...]} layout)
        keys = sorted({key for row in rows for key in row} - {"data"})
        rows = [{key: row.get(key) for key in keys} for row in rows]
        document = {key: [row[key] for row in rows] for key in keys}
        expected = rows if keys else []
        if not keys:
            document = []
    else:
        document = rows if layout == "list" else {"data": rows}
        expected = rows
    path.write_text(json.dumps(document), encoding="utf-8")
    assert read_rows(str(path), "w") == expected


cells = st.text(max_size=8)


@fuzz(80)
@given(
    header=st.lists(cells, min_size=1, max_size=4, unique=True).filter(lambda h: not h[0].startswith("\ufeff")),
    data=st.data(),
    delimiter=st.sampled_from([",", "\t"]),
    bom=st.booleans(),
)
def test_delimited_files_round_trip(scratch, header, data, delimiter, bom):
    """Any cells written by the csv module (quotes, delimiters, line breaks, NUL) read back as written."""
    records = data.draw(st.lists(st.lists(cells, min_size=len(header), max_size=len(header)), max_size=5))
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(records)
    path = scratch / ("cells.csv" if delimiter == "," else "cells.tsv")
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + out.getvalue().encode("utf-8"))
    expected = [dict(zip(header, record)) for record in records if any(cell.strip() for cell in record)]
    assert read_rows(str(path), "w") == expected


words = st.text(st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=6).filter(
    lambda word: word != DOCSTART
)


@fuzz(60)
@given(
    sentences=st.lists(st.lists(st.tuples(words, words), min_size=1, max_size=5), max_size=4),
    separator=st.sampled_from([" ", "\t", " X X "]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_conll_columns_round_trip(scratch, sentences, separator, newline):
    blocks = [newline.join(f"{token}{separator}{tag}" for token, tag in sentence) for sentence in sentences]
    path = scratch / "words.conll"
    path.write_bytes((f"{DOCSTART} O{newline}{newline}" + (newline * 2).join(blocks) + newline).encode("utf-8"))
    expected = [
        {CONLL_TOKENS: [token for token, _ in sentence], CONLL_TAGS: [tag for _, tag in sentence]}
        for sentence in sentences
    ]
    assert read_rows(str(path), "w") == expected


# --- column mapping and task encoders ------------------------------------------------------------

# Rows as the readers give them: text, but also whatever JSON a file holds in any column.
odd_values = st.one_of(
    json_values,
    st.floats(),  # NaN and infinities (JSON's NaN/Infinity)
    st.sampled_from([True, "", " ", "nan", "1e999", "0", "-1", "007", 2**63]),
    # integers past the largest float (a JSON number), digits past int("...")'s limit (a CSV cell)
    st.sampled_from([10**309, -(10**400), "9" * 4301]),
)
column_names = st.sampled_from(["text", "text_pair", "label", "tokens", "tags", "question", "context", "answers", "x"])


ABSENT = object()


def row_of(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy[dict]:
    """A row with stray columns and each field mostly well-formed, sometimes any value, sometimes missing.

    Well-formed dominates so that whole lists of rows often get past the checks to the tokenizer.
    """
    def mostly(good: st.SearchStrategy) -> st.SearchStrategy:
        # one_of would pick each branch equally often, and it drops repeated branches
        return st.integers(0, 9).flatmap(lambda n: good if n < 8 else odd_values if n == 8 else st.just(ABSENT))

    wanted = st.fixed_dictionaries({name: mostly(good) for name, good in fields.items()})
    stray = st.dictionaries(column_names, odd_values, max_size=2)
    return st.tuples(stray, wanted).map(
        lambda parts: {**parts[0], **{name: value for name, value in parts[1].items() if value is not ABSENT}}
    )


@fuzz(100)
@given(
    rows=st.lists(st.dictionaries(column_names, odd_values, max_size=4), max_size=4),
    columns=st.dictionaries(st.sampled_from(["data.text_column", "data.label_column"]), column_names, min_size=1),
)
def test_column_checks_pass_only_when_every_row_has_every_column(rows, columns):
    try:
        require_columns(rows, columns, "d.jsonl")
    except DataError as exc:
        assert exc.message.startswith(("data.", "d.jsonl: record "))
        return
    assert all(column in row for row in rows for column in columns.values())
    for index, row in enumerate(rows):
        for column in columns.values():
            try:
                assert text_field(row, column, index, "d.jsonl") == row[column]
            except DataError as exc:
                assert not isinstance(row[column], str)
                assert exc.message.startswith(f"d.jsonl: record {index}: {column!r} is ")


class_names = st.one_of(st.sampled_from(["neg", "pos", "neutral", "0", "1", "10", "01"]), st.integers(-2, 3))
numbers = st.one_of(st.integers(), st.floats(), st.sampled_from(["0.5", "-3", "1e999", "nan", 10**309, -(10**400)]))
label_values = {
    Problem.single_label: st.one_of(class_names, st.floats(-2, 2)),
    Problem.multi_label: st.one_of(class_names, st.lists(class_names, max_size=3)),
    Problem.regression: numbers,
}


@st.composite
def classification_rows(draw, problem: Problem) -> list[dict]:
    fields = {"text": st.text(max_size=20), "text_pair": st.text(max_size=20), "label": label_values[problem]}
    return draw(st.lists(row_of(fields), min_size=1, max_size=3))


@fuzz(150)
@given(
    problem_and_rows=st.sampled_from(list(Problem)).flatmap(
        lambda problem: st.tuples(st.just(problem), classification_rows(problem))
    ),
    pairs=st.booleans(),
    label_names=st.one_of(st.none(), st.sampled_from([["neg", "pos"], ["a", "b", "c"], ["1", "0"]])),
    max_length=st.integers(1, 24),
    with_labels=st.booleans(),
)
def test_classification_rows_encode_or_give_data_error(problem_and_rows, pairs, label_names, max_length, with_labels):
    problem, rows = problem_and_rows
    config = (PairClassificationConfig if pairs else ClassificationConfig)(problem=problem, max_length=max_length)
    data = DataConfig(label_names=label_names)
    task = SequenceClassification(pairs=pairs)
    try:
        labels = task.label_names(Splits({"train": rows}, {"train": "train.jsonl"}), config, data)
        features = task.bind(config, data, labels, tokenizer()).encode(rows, "train.jsonl", with_labels=with_labels)
    except DataError:
        return
    assert len(features) == len(rows)
    for feature in features:
        assert all(isinstance(token, int) for token in feature["input_ids"])
        if not with_labels:
            assert "labels" not in feature
        elif problem is Problem.single_label:
            assert 0 <= feature["labels"] < len(labels)
        elif problem is Problem.multi_label:
            assert len(feature["labels"]) == len(labels)
        else:
            assert isinstance(feature["labels"], float)


tags = st.one_of(
    st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-", "I-x y", "PER", "o"]),
    st.integers(-1, 4), st.booleans(), st.none(),
)
tagged_words = st.lists(st.tuples(st.text(max_size=6), tags), max_size=6)


@st.composite
def ner_rows(draw) -> dict:
    """Rows whose tokens and tags mostly line up, with raw text in `text` for predict."""
    pairs = draw(tagged_words)
    good = {"tokens": st.just([word for word, _ in pairs]), "tags": st.just([tag for _, tag in pairs]),
            "text": st.text(max_size=20)}
    return draw(row_of(good))


@fuzz(120)
@given(
    rows=st.lists(ner_rows(), min_size=1, max_size=3),
    scheme=st.sampled_from(list(TagScheme)),
    label_names=st.one_of(st.none(), st.sampled_from([["O", "B-PER", "I-PER"], ["O", "S-LOC", "E-LOC"], ["X"]])),
    max_length=st.integers(1, 24),
    label_all_subtokens=st.booleans(),
    with_labels=st.booleans(),
)
def test_ner_rows_encode_or_give_ftcli_error(rows, scheme, label_names, max_length, label_all_subtokens, with_labels):
    config = NerConfig(scheme=scheme, max_length=max_length, label_all_subtokens=label_all_subtokens)
    data = DataConfig(label_names=label_names)
    task = TokenClassification()
    try:
        labels = task.label_names(Splits({"train": rows}, {"train": "train.jsonl"}), config, data)
        features = task.bind(config, data, labels, tokenizer()).encode(rows, "train.jsonl", with_labels=with_labels)
    except (DataError, ConfigError):  # ConfigError: data.label_names that are not tags
        return
    assert len(features) == len(rows)
    for row, feature in zip(rows, features):
        words = feature[ALIGNMENT]
        assert len(words.word_ids) == len(feature["input_ids"])
        if with_labels:
            assert len(words.gold) == len(row["tokens"])
            assert all(label == -100 or 0 <= label < len(labels) for label in feature["labels"])


@st.composite
def qa_rows(draw) -> dict:
    """SQuAD rows whose answers are mostly real spans of their context, at offsets that may be off."""
    context = draw(st.text(min_size=2, max_size=40))  # "" comes from odd_values
    start = draw(st.integers(0, len(context) - 2))
    end = min(start + draw(st.integers(1, 8)), len(context) - draw(st.sampled_from([0, 1])))  # at the end, or not
    # mostly right; else the same place counted from the end (a negative index), one off, or before the start
    offset = draw(st.sampled_from([start, start, start, start - len(context), start + 1, -1]))
    spans = st.just({"text": [context[start:end]], "answer_start": [offset]})
    unanswerable = st.just({"text": [], "answer_start": []})
    answers = st.one_of(spans, unanswerable, st.dictionaries(st.sampled_from(["text", "answer_start"]), odd_values))
    answers = st.integers(0, 9).flatmap(lambda n: spans if n < 7 else answers)
    return draw(row_of({"question": st.text(max_size=8), "context": st.just(context), "answers": answers}))


@fuzz(120)
@given(rows=st.lists(qa_rows(), min_size=1, max_size=2), max_length=st.integers(8, 64), stride=st.integers(0, 63))
def test_qa_rows_encode_or_give_data_error(rows, max_length, stride):
    config = QaConfig(max_length=max_length, doc_stride=min(stride, max_length - 1))
    kind = QuestionAnswering()
    task = kind.bind(config, DataConfig(), kind.label_names(None, config, None), tokenizer())
    for with_labels in (False, True):  # predict's inputs, then training rows
        try:
            features = task.encode(rows, "train.jsonl", with_labels=with_labels)
        except DataError:
            continue
        assert sorted({feature[WINDOW].row for feature in features}) == list(range(len(rows)))
        for feature in features:
            if with_labels:
                assert 0 <= feature["start_positions"] <= feature["end_positions"] < len(feature["input_ids"])


# --- config checker ------------------------------------------------------------------------------

GROUPS = ["model", "method", "task", "data", "trainer", "debug", "experiment", "hydra/job_logging"]
SETTINGS = [
    "trainer.lr", "trainer.batch_size", "trainer.epochs", "trainer.max_steps", "trainer.scheduler",
    "trainer.precision", "trainer.resume", "trainer.eval_strategy", "task.max_length", "task.problem",
    "task.threshold", "task.label_words", "method.rank", "data.train_file", "data.label_names",
    "data.validation_ratio", "data.text_column", "model.name_or_path", "seed", "overwrite", "run_dir", "input",
    "output", "merge", "batch_size", "num_beams", "hydra.run.dir", "hydra.job.chdir",
]
keys = st.one_of(
    st.sampled_from(GROUPS),
    st.sampled_from(SETTINGS),
    st.from_regex(r"[a-z_]{1,8}(\.[a-z_]{1,8}){0,2}", fullmatch=True),
    st.text(max_size=8).filter(lambda key: not key.startswith("-")),  # a leading "-" is a flag, not an override
)
interpolations = st.sampled_from([
    "${interp}", "${trainer.lr}", "${trainer.batch_size}", "${now:%Y}", "${now:}", "${", "${oc.env:FTCLI_FUZZ_UNSET}",
    "${oc.env:FTCLI_FUZZ_UNSET,1}", "${oc.decode:'[1'}", "\\${x}",
])
values = st.one_of(
    st.text(max_size=10),
    st.integers().map(str),
    st.floats().map(str),
    st.sampled_from(["[1,2]", "[]", "[lora]", "[lora,1]", "{a:1}", "{}", "{0: ' bad', 1: ' good'}", "a,b", "full,lora",
                     "range(1,3)", "choice(a,b)", "interval(0,1)"]),
    interpolations,
    st.sampled_from(["null", "true", "false", "???", "'quoted'", '"double"', "'", '"', "\\", "a=b", " ", ""]),
    st.sampled_from(["lora", "full", "minilm", "tiny_bert", "sentiment", "ner", "qa", "prompting", "smoke", "é",
                     "日本語", "\U0001f600"]),
)
overrides = st.one_of(
    st.tuples(st.sampled_from(SETTINGS), st.one_of(values, interpolations)).map("=".join),  # a setting, any value
    st.tuples(st.sampled_from(["", "+", "~"]), st.sampled_from(GROUPS), st.just("="), values).map("".join),  # a group
    st.tuples(st.sampled_from(["", "+", "++", "~"]), keys, st.sampled_from(["=", ""]), values).map("".join),  # anything
).filter(lambda word: not word.startswith("-"))  # "-..." is a flag


def check_command_line(command: str, argv: list[str], configs: Path) -> None:
    """What `ftcli COMMAND ARGV...` runs before Hydra does (`cli.main` and `cli._run`)."""
    from ftcli.cli.argv import normalise
    from ftcli.cli.precheck import check_overrides
    from ftcli.commands import job_for

    words = normalise(command, argv, configs)
    check_overrides(job_for(command, words), words, configs)


REQUIRED = {
    "train": [], "eval": ["run_dir=runs/x"], "predict": ["run_dir=runs/x", "input=-"], "export": ["run_dir=runs/x"],
}


@pytest.mark.parametrize(("command", "examples"), [("train", 60), ("eval", 20), ("predict", 20), ("export", 20)])
def test_any_overrides_pass_or_give_ftcli_error(config_dir, registered_configs, command, examples):
    """The command's required settings come first, so the random overrides after them often reach the value checks."""
    @fuzz(examples)
    @given(argv=st.lists(overrides, min_size=1, max_size=2), multirun=st.booleans())
    def check(argv, multirun):
        try:
            check_command_line(command, (["-m"] if multirun else []) + REQUIRED[command] + argv, config_dir)
        except FtcliError as exc:
            assert exc.message

    check()


# --- regressions: the minimal examples the properties above found ----------------------------------


int_digit_limit = sys.get_int_max_str_digits()
needs_digit_limit = pytest.mark.skipif(int_digit_limit == 0, reason="int() has no digit limit in this interpreter")


@needs_digit_limit
def test_jsonl_number_past_the_digit_limit_is_a_data_error(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a"}\n{"label": ' + "7" * (int_digit_limit + 1) + "}\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_rows(str(path), "data.train_file")
    assert info.value.message == (
        f"data.train_file={path}: line 2 is not valid JSON "
        f"(a number has more than {int_digit_limit} digits; write it as a string)"
    )


@needs_digit_limit
def test_json_number_past_the_digit_limit_is_a_data_error(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("[" + "7" * (int_digit_limit + 1) + "]", encoding="utf-8")
    with pytest.raises(DataError, match=rf"d\.json: invalid JSON: a number has more than {int_digit_limit} digits;"):
        read_rows(str(path), "data.train_file")


def test_json_nested_past_the_recursion_limit_is_a_data_error(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("[" * 100_000, encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.json: invalid JSON: nested too deeply$"):
        read_rows(str(path), "data.train_file")


@pytest.mark.parametrize(
    ("line", "escape"),
    [('{"text": "a\\ud800"}', "\\ud800"), ('{"\\udc80": 1}', "\\udc80"), ('{"text": ["\\ud83d"]}', "\\ud83d")],
)
def test_jsonl_half_of_a_surrogate_pair_is_a_data_error(tmp_path, line, escape):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_rows(str(path), "data.train_file")
    assert info.value.message == (
        f"data.train_file={path}: line 2 holds {escape}, "
        "half of a UTF-16 surrogate pair without its other half, which is not text"
    )
    assert info.value.hint == "write the character itself, or its whole pair (\\ud83d\\ude00, not \\ud83d alone)"


def test_json_half_of_a_surrogate_pair_is_a_data_error(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[{"text": "ok"}, {"text": "\\udc80"}]', encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.json: a string holds \\udc80, half of a UTF-16 surrogate pair"):
        read_rows(str(path), "data.train_file")


def test_json_surrogate_pairs_and_escaped_backslashes_still_read(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "\\ud83d\\ude00 \\\\ud800"}\n', encoding="utf-8")
    assert read_rows(str(path), "w") == [{"text": "\U0001f600 \\ud800"}]


def test_regression_problem_label_past_the_largest_float_is_a_data_error():
    rows = [{"text": "a", "label": 10**309}]
    config = ClassificationConfig(problem=Problem.regression)
    with pytest.raises(DataError, match=r"^f\.jsonl: record 0 has label=1000+; task.problem=regression needs a finite"):
        SequenceClassification().bind(config, DataConfig(), ["score"], tokenizer()).encode(rows, "f.jsonl")


@needs_digit_limit
def test_label_of_more_digits_than_int_converts_is_ordered_as_text():
    long_label = "9" * (int_digit_limit + 1)
    rows = [{"text": "a", "label": long_label}, {"text": "b", "label": "10"}, {"text": "c", "label": "2"}]
    splits = Splits({"train": rows}, {"train": "train.csv"})
    labels = SequenceClassification().label_names(splits, ClassificationConfig(), DataConfig())
    assert labels == ["10", "2", long_label]


def test_qa_negative_answer_start_is_a_data_error():
    """`context[-2:-1]` is the answer too, but a negative offset is no character position."""
    rows = [{"question": "", "context": "00", "answers": {"text": ["0"], "answer_start": [-2]}}]
    config = QaConfig(max_length=8, doc_stride=0)
    with pytest.raises(DataError) as info:
        QuestionAnswering().bind(config, DataConfig(), ["start", "end"], tokenizer()).encode(rows, "train.jsonl")
    assert info.value.message == "train.jsonl: record 0: answer 0 is text='0', answer_start=-2"
    assert info.value.hint == "each answer is a non-empty string and the character offset (from 0) where it starts"


def test_qa_question_that_leaves_no_more_than_the_stride_is_a_data_error():
    """tokenizers panics on such a row instead of raising."""
    rows = [{"question": "a b c d e f", "context": "x " * 50}]
    config = QaConfig(max_length=12, doc_stride=3)
    with pytest.raises(DataError) as info:
        QuestionAnswering().bind(config, DataConfig(), ["start", "end"], tokenizer()).encode(
            rows, "in.jsonl", with_labels=False
        )
    assert info.value.message == (
        "in.jsonl: record 0: the question takes 6 of task.max_length=12 tokens, which leaves 3 for the context "
        "in each window, not more than task.doc_stride=3"
    )
    assert info.value.hint == "raise task.max_length, lower task.doc_stride, or shorten the question"


def test_qa_short_context_fits_beside_a_long_question_whatever_the_stride():
    rows = [{"question": "a b c d e f", "context": "x y"}]
    task = QuestionAnswering().bind(QaConfig(max_length=12, doc_stride=3), DataConfig(), ["start", "end"], tokenizer())
    features = task.encode(rows, "in.jsonl", with_labels=False)
    assert len(features) == 1


METHOD_OPTIONS = (
    "adapter, bitfit, freeze, full, ia3, ln_tuning, lora, lora_adapter, lora_prefix, p_tuning, prefix_tuning, "
    "prompt_tuning"
)


@pytest.mark.parametrize(
    ("command", "argv", "message"),
    [
        ("train", ["method=1"], f"method=1 is not an option; options for method: {METHOD_OPTIONS}"),
        ("train", ["method=[lora,1]"], f"method=[lora,1] is not an option; options for method: {METHOD_OPTIONS}"),
        ("train", ["data=[1]"], "data=[1] is not an option; options for data: glue_sst2, sample"),
        ("export", ["run_dir=x", "+debug=3"], "+debug=3 is not an option; options for debug: smoke"),
        ("train", ["debug=null"],
         "debug=null: a config group cannot be null; ~debug leaves it out; options for debug: smoke"),
        ("predict", ["run_dir=x", "input=-", "~hydra/job_logging=-1"],
         "~hydra/job_logging=-1 is not an option; "
         "options for hydra/job_logging: default, disabled, ftcli, none, stdout"),
        ("train", ["+="], "'+=' has no key before '='; write KEY=VALUE, e.g. trainer.lr=1e-4"),
        ("eval", ["run_dir=x", "=1"], "'=1' has no key before '='; write KEY=VALUE, e.g. trainer.lr=1e-4"),
    ],
)
def test_config_group_given_no_option_name_is_a_config_error(config_dir, registered_configs, command, argv, message):
    with pytest.raises(ConfigError) as info:
        check_command_line(command, argv, config_dir)
    assert info.value.message == message
    assert info.value.hint.startswith(f"`ftcli {command} --help` lists the groups and settings; overrides given: ")


@pytest.mark.parametrize(
    ("command", "argv", "message"),
    [
        ("train", ["trainer.lr=${oops}"], "trainer.lr: Interpolation key 'oops' not found"),
        ("train", ["data.validation_ratio=${trainer.lr}"],
         "data.validation_ratio: While dereferencing interpolation '${trainer.lr}': "
         "Incompatible value 'None' for field of type 'float'"),
        ("eval", ["run_dir=${oc.env:FTCLI_FUZZ_UNSET}"],
         "run_dir: KeyError raised while resolving interpolation: "
         "\"Environment variable 'FTCLI_FUZZ_UNSET' not found\""),
    ],
)
def test_interpolation_that_does_not_resolve_is_a_config_error(config_dir, registered_configs, command, argv, message):
    with pytest.raises(ConfigError) as info:
        check_command_line(command, argv, config_dir)
    assert info.value.message == message
    assert info.value.hint.startswith("${...} must name another setting, e.g. ${trainer.batch_size}, or a resolver")
