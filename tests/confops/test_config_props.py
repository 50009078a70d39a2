"""Hypothesis properties of the semantic diff, the in-place edits and apply."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import random
from pathlib import Path
from typing import Any

import tomlkit
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nodus_cli.confops.apply import apply_config
from nodus_cli.confops.diff import format_path, semantic_diff
from nodus_cli.confops.edit import apply_edits, parse_set
from nodus_cli.confops.formats import parse_toml
from nodus_cli.store import open_store
from nodus_cli.workspace import Workspace

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# --- generated TOML documents ---------------------------------------------------------

bare_keys = st.from_regex(r"[a-z][a-z0-9_-]{0,7}", fullmatch=True)
any_keys = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6)
keys = st.one_of(bare_keys, bare_keys, any_keys)
offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
scalars = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),  # escapes included
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.datetimes(),
    st.datetimes(timezones=offsets),
    st.dates(),
    st.times(),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    tables = st.dictionaries(keys, children, max_size=4)
    return st.one_of(
        st.lists(children, max_size=3),  # arrays (inline tables inside arrays too)
        tables,
        st.lists(tables, min_size=1, max_size=3),  # arrays of tables
    )


values = st.recursive(scalars, _containers, max_leaves=10)
documents = st.dictionaries(keys, values, max_size=6)


def dump(document: dict[str, Any], rng: random.Random | None = None) -> str:
    """TOML text of ``document``, with comments and blank lines sprinkled in."""
    text = tomlkit.dumps(document)
    if rng is None:
        return text
    lines = lines_of(text)
    out: list[str] = []
    for line in lines:
        if rng.random() < 0.2:
            out.append(rng.choice(["\n", "# a comment\n", "   # indented comment\n"]))
        out.append(line)
    return "".join(out)


def lines_of(text: str) -> list[str]:
    """Lines as TOML sees them (str.splitlines would also split at U+0085 and U+2028)."""
    pieces = text.split("\n")
    return [piece + "\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


def canonical(value: Any) -> Any:
    """An independent notion of semantic equality: a tagged, order-free form."""
    if isinstance(value, dict):
        return ("table", tuple(sorted((k, canonical(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("array", tuple(canonical(v) for v in value))
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, dt.datetime):
        offset = value.utcoffset()
        return ("datetime", value.replace(tzinfo=None).isoformat(), offset)
    if isinstance(value, dt.date | dt.time):
        return (type(value).__name__, value.isoformat())
    return (type(value).__name__, repr(value))


def _mutations(document: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The same document, a re-ordered copy, or a copy with one value changed."""

    def reorder(data: Any) -> Any:
        if isinstance(data, dict):
            return {k: reorder(data[k]) for k in reversed(list(data))}
        if isinstance(data, list):
            return [reorder(v) for v in data]
        return data

    def change_one(draw_key: str, value: Any) -> dict[str, Any]:
        copy = json.loads(json.dumps(document, default=str))  # shape only
        del copy
        result = dict(document)
        result[draw_key] = value
        return result

    options = [st.just(document), st.just(reorder(document)), documents]
    if document:
        options.append(st.builds(change_one, st.sampled_from(sorted(document)), values))
    return st.one_of(options)


# --- properties -----------------------------------------------------------------------


@PROPERTY
@given(documents)
def test_generated_documents_round_trip(document: dict[str, Any]) -> None:
    assert canonical(parse_toml(dump(document), "doc")) == canonical(document)


@PROPERTY
@given(documents.flatmap(lambda a: st.tuples(st.just(a), _mutations(a))), st.randoms())
def test_diff_is_empty_exactly_when_semantically_equal(pair: Any, rng: random.Random) -> None:
    a, b = pair
    parsed_a = parse_toml(dump(a, rng), "a")  # formatting and comments differ from b's
    parsed_b = parse_toml(dump(b), "b")
    changes = semantic_diff(parsed_a, parsed_b)
    assert (changes == []) == (canonical(parsed_a) == canonical(parsed_b))
    assert semantic_diff(parsed_a, parsed_a) == []
    assert [c.reversed().kind for c in semantic_diff(parsed_b, parsed_a)] == [
        c.kind for c in changes
    ] or len(changes) != 0


json_values = st.recursive(
    st.one_of(
        st.text(max_size=8),
        st.integers(-(2**63), 2**63 - 1),  # TOML integers are 64-bit
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    ),
    _containers,
    max_leaves=10,
)


@PROPERTY
@given(st.dictionaries(keys, json_values, max_size=6))
def test_toml_and_json_of_the_same_data_have_no_semantic_diff(document: dict[str, Any]) -> None:
    as_json = json.loads(json.dumps(document))
    assert semantic_diff(parse_toml(dump(document), "t"), as_json) == []


@settings(PROPERTY, max_examples=25)
@given(documents, documents, st.randoms())
def test_applying_b_over_a_leaves_no_semantic_change(
    tmp_path_factory, a: dict[str, Any], b: dict[str, Any], rng: random.Random
) -> None:
    root = tmp_path_factory.mktemp("apply")
    target = root / "service.toml"
    target.write_text(dump(a, rng))
    new = dump(b, rng).encode()
    workspace = Workspace(tmp_path_factory.getbasetemp() / "props-ws", "--home")
    with open_store(workspace) as store:
        result = apply_config(store, target, content=new)
    assert target.read_bytes() == new
    assert semantic_diff(parse_toml(target.read_text(), "t"), parse_toml(new.decode(), "b")) == []
    if result.plan.changed:
        assert result.generation is not None


def _scalar_paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Key paths of scalars that sit on a line of their own (standard tables, AoT elements)."""
    found: list[tuple] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict):
                found += _scalar_paths(item, (*path, key))
            elif isinstance(item, list) and item and all(isinstance(v, dict) for v in item):
                for index, element in enumerate(item):
                    found += _scalar_paths(element, (*path, key, index))
            else:
                found.append((*path, key))
    return found


new_values = st.sampled_from(["500", '"web-1"', "true", "1.5", "2026-01-31T14:00:00Z", "[1, 2]"])


@PROPERTY
@given(documents, st.randoms(), st.data())
def test_set_leaves_every_untouched_line_byte_identical(
    document: dict[str, Any], rng: random.Random, data: st.DataObject
) -> None:
    text = dump(document, rng)
    paths = _scalar_paths(document)
    existing = data.draw(st.sampled_from(paths)) if paths and data.draw(st.booleans()) else None
    if existing is not None:
        path = existing
    else:
        parent = data.draw(st.sampled_from([(), *[p[:-1] for p in paths if len(p) > 1]]))
        fresh = data.draw(st.lists(bare_keys, min_size=1, max_size=2))
        path = (*parent, *fresh)
        node: Any = document
        for part in path:
            if (isinstance(node, dict) and part in node) or isinstance(part, int):
                node = node[part]
            else:
                break
        else:
            return  # the generated "fresh" key already exists
        assume(isinstance(node, dict))
    value = data.draw(new_values)
    edited = apply_edits(text, [parse_set(f"{format_path(path)}={value}")])
    old_lines, new_lines = lines_of(text), lines_of(edited)
    opcodes = [op for op in difflib.SequenceMatcher(None, old_lines, new_lines).get_opcodes()]
    touched = [(tag, i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in opcodes if tag != "equal"]
    if existing is not None:
        assert touched in ([], [("replace", 1, 1)]), (text, edited)
    else:
        assert touched == [("insert", 0, 1)], (text, edited)
    result: Any = parse_toml(edited, "edited")
    for part in path:
        result = result[part]
    assert canonical(result) == canonical(parse_toml(f"v = {value}", "v")["v"])


def test_set_example_keeps_comments_and_spacing(tmp_path: Path) -> None:
    text = "# top\n[pool]  # the pool\nmax   =   100   # limit\n\n[log]\nlevel = 'info'\n"
    edited = apply_edits(text, [parse_set("pool.max=500"), parse_set("pool.min=1")])
    assert (
        edited
        == "# top\n[pool]  # the pool\nmax   =   500   # limit\nmin = 1\n\n[log]\nlevel = 'info'\n"
    )


# --- secrets are masked in every rendering of a diff (issue 23.5) -----------------------

secret_keys = st.sampled_from(["password", "api_key", "token", "clientSecret", "private_key"])
_secret_values = st.integers(0, 10**6).map(lambda n: f"S3CRET-{n}")


def _with_secrets(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.one_of(st.integers(), st.text(max_size=5), _secret_values)
    child = leaf if depth == 0 else st.one_of(leaf, _with_secrets(depth - 1))
    return st.dictionaries(st.one_of(bare_keys, secret_keys), child, max_size=4).map(
        lambda d: {k: (v if not isinstance(v, str) or not v.startswith("S3CRET") or
                       k in {"password", "api_key", "token", "clientSecret", "private_key"}
                       else "plain") for k, v in d.items()}
    )  # fmt: skip


@PROPERTY
@given(old=_with_secrets(2), new=_with_secrets(2))
def test_no_secret_value_is_printed_by_any_diff_rendering(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    """A value kept under a secret-looking key never shows in text or json diffs."""
    from nodus_cli.confops.diff import mask_change_json, mask_secrets, render_text

    changes = semantic_diff(old, new)
    text = render_text(mask_secrets(changes))
    documents = json.dumps([c.to_json() for c in mask_secrets(changes)])
    stored = json.dumps([mask_change_json(c.to_json()) for c in changes])
    for rendering in (text, documents, stored):
        assert "S3CRET" not in rendering, rendering
    assert len(mask_secrets(changes)) == len(changes)
