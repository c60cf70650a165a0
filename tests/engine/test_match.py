"""The ``where`` filter language: matching event properties and reporting invalid filters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kaskad.engine.match import MISSING, check_where, compare, matches, resolve

CART = {
    "cart": {"total": 1250, "currency": "EUR", "items": [{"sku": "PIZZA-1", "qty": 2}, {"sku": "COLA", "qty": 1}]},
    "category": "pizza",
    "first": True,
    "count": "3",
    "note": None,
    "tags": ["new", "promo"],
    "placed": "2026-03-01T10:00:00Z",
    "code": "007",
}


def test_empty_filters_match_everything():
    assert matches(None, CART)
    assert matches({}, CART)
    assert matches({}, None)


def test_literals_are_equality():
    assert matches({"category": "pizza", "first": True}, CART)
    assert not matches({"category": "sushi"}, CART)
    assert matches({"cart.currency": "EUR"}, CART)
    assert matches({"cart.total": 1250.0}, CART)
    assert matches({"cart.items.0.sku": "PIZZA-1"}, CART)
    assert not matches({"cart.items.5.sku": "PIZZA-1"}, CART)


def test_booleans_never_equal_numbers():
    assert not matches({"first": 1}, CART)
    assert not matches({"cart.items.1.qty": True}, CART)


def test_numbers_compare_numerically_also_as_numeric_strings():
    assert matches({"cart.total": {"gte": 1000}}, CART)
    assert matches({"cart.total": {"gt": "999.5"}}, CART)
    assert matches({"cart.total": {"lte": 1250}}, CART)
    assert not matches({"cart.total": {"lt": 1250}}, CART)
    assert matches({"count": 3}, CART)  # "3" == 3
    assert matches({"count": {"gt": 2}}, CART)
    assert matches({"count": {"lt": "10"}}, CART)  # numeric strings order as numbers, not "3" > "10"
    assert not matches({"code": "7"}, CART)  # but two strings are equal only as text
    assert matches({"code": {"eq": 7}}, CART)  # against a number, "007" is 7


def test_type_mismatches_are_false_never_errors():
    assert not matches({"category": {"gt": 5}}, CART)
    assert not matches({"cart": {"gte": 1}}, CART)
    assert not matches({"tags": 3}, CART)
    assert not matches({"first": {"gt": 0}}, CART)


def test_strings_and_dates():
    assert matches({"category": {"gt": "pasta"}}, CART)
    assert matches({"placed": {"gte": "2026-03-01"}}, CART)  # date against datetime compares dates
    assert matches({"placed": {"lt": "2026-03-02"}}, CART)
    assert matches({"placed": {"gt": "2026-03-01T09:00:00+00:00"}}, CART)
    assert not matches({"placed": {"gt": "2026-03-01T11:30:00+01:00"}}, CART)  # 10:30 UTC
    assert matches({"placed": {"eq": "2026-03-01"}}, CART)
    assert not matches({"category": {"gt": "2020-01-01"}}, CART)  # text against a date: a mismatch
    assert not matches({"category": {"lt": "2030-01-01"}}, CART)


def test_in_and_not_in():
    assert matches({"category": {"in": ["pizza", "sushi"]}}, CART)
    assert not matches({"category": {"in": ["sushi"]}}, CART)
    assert matches({"category": {"not_in": ["sushi"]}}, CART)
    assert not matches({"category": {"not_in": ["pizza"]}}, CART)
    assert matches({"cart.total": {"in": ["1250", 7]}}, CART)


def test_contains():
    assert matches({"tags": {"contains": "promo"}}, CART)
    assert not matches({"tags": {"contains": "vip"}}, CART)
    assert matches({"category": {"contains": "izz"}}, CART)
    assert matches({"cart": {"contains": "currency"}}, CART)
    assert not matches({"cart.total": {"contains": "2"}}, CART)


def test_exists():
    assert matches({"cart.total": {"exists": True}}, CART)
    assert matches({"missing": {"exists": False}}, CART)
    assert not matches({"missing": {"exists": True}}, CART)
    assert matches({"note": {"exists": False}}, CART)  # null counts as absent


def test_a_missing_path_satisfies_only_exists_false_and_ne():
    for op, operand in [("eq", 1), ("gt", 0), ("gte", 0), ("lt", 0), ("lte", 0), ("in", [1]), ("not_in", [1]), ("contains", "x")]:
        assert not matches({"nope.deeper": {op: operand}}, CART), op
    assert matches({"nope": {"ne": 1}}, CART)
    assert matches({"nope": {"exists": False}}, CART)
    assert not matches({"nope": None}, CART)
    assert matches({"note": None}, CART)  # a present null equals null


def test_all_tests_must_hold():
    assert matches({"category": "pizza", "cart.total": {"gte": 1000}}, CART)
    assert not matches({"category": "pizza", "cart.total": {"gte": 5000}}, CART)


def test_properties_prefix_is_optional():
    assert matches({"properties.first": True}, CART)
    assert resolve({"properties": {"a": 1}, "a": 2}, "properties.a") == 1  # real key wins
    assert resolve(CART, "properties") is MISSING


def test_object_literals_need_eq():
    data = {"addr": {"city": "Riga"}}
    assert matches({"addr": {"eq": {"city": "Riga"}}}, data)
    assert not matches({"addr": {"city": "Riga"}}, data)  # not an operator object: invalid, matches nothing
    assert check_where({"addr": {"city": "Riga"}})


def test_invalid_filters_match_nothing():
    assert not matches({"category": {"in": "pizza"}}, CART)
    assert not matches({"category": {"like": "pizza"}}, CART)
    assert not matches({"category": {"eq": "pizza", "ne": "x"}}, CART)
    assert not matches("category", CART)  # type: ignore[arg-type]


def test_compare_directly():
    assert compare("ne", MISSING, 3)
    assert not compare("eq", MISSING, None)
    assert not compare("bogus", 1, 1)


def test_check_where_accepts_valid_filters():
    assert check_where(None) == []
    assert check_where({}) == []
    assert check_where({"cart.total": {"gte": 1000}, "category": {"in": ["pizza"]}, "first": True, "x": {"exists": False},
                        "addr": {"eq": {"city": "Riga"}}, "tags": {"contains": "vip"}, "when": {"lt": "2026-01-01"}}) == []


@pytest.mark.parametrize(
    "where, fragment",
    [
        ({"cart.total": {"gtee": 5}}, "cart.total: unknown operator 'gtee'"),
        ({"category": {"in": "pizza"}}, "category: 'in' needs a list"),
        ({"category": {"not_in": 3}}, "category: 'not_in' needs a list"),
        ({"x": {"exists": "yes"}}, "x: 'exists' needs true or false"),
        ({"x": {"gt": [1]}}, "x: 'gt' needs a number or a string"),
        ({"x": {"lte": True}}, "x: 'lte' needs a number or a string"),
        ({"x": {"lt": None}}, "x: 'lt' needs a number or a string (ISO dates compare as dates), not null"),
        ({"x": {"contains": ["a"]}}, "x: 'contains' needs a single value"),
        ({"x": {"gt": 1, "lt": 5}}, "x: an operator object has exactly one of"),
        ({"x": {}}, "x: an operator object has exactly one of"),
        ({"a..b": 1}, "'a..b': a property path"),
        ({"": 1}, "'': a property path"),
        (["x"], "where must be an object"),
    ],
)
def test_check_where_names_the_path_and_the_problem(where, fragment):
    errors = check_where(where)
    assert len(errors) == 1 and fragment in errors[0], errors


def test_check_where_reports_every_error():
    assert len(check_where({"a": {"in": 1}, "b": {"foo": 1}, "c": 3})) == 2


# ---------------------------------------------------------------- docs/conditions-and-waits.md

DOCS = (Path(__file__).parents[2] / "docs" / "conditions-and-waits.md").read_text()
DOC_BLOCKS = re.findall(r"```(\w+)(?: (\w+))?\n(.*?)```", DOCS, re.S)


def doc_blocks(lang, tag=None):
    return [body for lg, tg, body in DOC_BLOCKS if lg == lang and (tag is None or tg == tag)]


def test_the_docs_page_has_its_examples():
    assert len(doc_blocks("json", "event")) == 1 and len(doc_blocks("json", "where")) >= 4
    assert len(doc_blocks("json", "invalid")) == 1 and len(doc_blocks("text", "errors")) == 1
    assert len(doc_blocks("python")) == 1


@pytest.mark.parametrize("body", doc_blocks("json", "where"))
def test_docs_filters_are_valid_and_match_the_sample_event(body):
    (sample,) = doc_blocks("json", "event")
    where = json.loads(body)
    assert check_where(where) == []
    assert matches(where, json.loads(sample))
    # and each test in it can fail: a different event does not match
    assert not matches(where, {"category": "sushi"})


def test_docs_invalid_filter_reports_exactly_the_documented_errors():
    (invalid,) = doc_blocks("json", "invalid")
    (errors,) = doc_blocks("text", "errors")
    assert check_where(json.loads(invalid)) == errors.strip().splitlines()


def test_docs_python_example_runs():
    (code,) = doc_blocks("python")
    exec(compile(code, "docs/conditions-and-waits.md", "exec"), {})
