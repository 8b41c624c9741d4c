"""The per-worker cache of parsed FHIR models (cds.parse.ModelCache): one entry per exact JSON and patient."""

from __future__ import annotations

from cds.parse import ModelCache, parse_cached

CONDITION = {
    "resourceType": "Condition",
    "id": "c1",
    "subject": {"reference": "Patient/p1"},
    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.17"}]},
}


def test_the_key_is_the_canonical_json_and_the_patient() -> None:
    key = ModelCache.key
    reordered = dict(reversed(list(CONDITION.items())))
    assert key(CONDITION, "p1") == key(reordered, "p1")  # member order does not matter
    assert key(CONDITION, "p1") != key(CONDITION, "p2")  # repairs may use the patient in context
    changed = {**CONDITION, "code": {"coding": [{"code": "M54.16"}]}}
    assert key(CONDITION, "p1") != key(changed, "p1")


def test_non_finite_numbers_and_null_never_share_a_key() -> None:
    """msgspec writes NaN and ±inf as null; such a resource is keyed by json.dumps, which spells them out."""
    values = [None, float("inf"), float("-inf"), float("nan"), "null", 0]
    keys = {ModelCache.key({**CONDITION, "x": v}, "p1") for v in values}
    assert len(keys) == len(values) and None not in keys


def test_json_too_deep_to_encode_is_parsed_without_the_cache() -> None:
    deep: dict = {}
    node = deep
    for _ in range(100_000):
        node["a"] = {}
        node = node["a"]
    assert ModelCache.key(deep, "p1") is None


def test_the_same_json_gets_the_same_model_and_the_oldest_entry_goes_first() -> None:
    cache = ModelCache(max_entries=2)
    first = parse_cached(CONDITION, "p1", cache)
    assert first is not None and parse_cached(dict(CONDITION), "p1", cache) is first
    for i in range(2):
        parse_cached({**CONDITION, "id": f"other{i}"}, "p1", cache)
    assert parse_cached(CONDITION, "p1", cache) is not first  # evicted, parsed again
