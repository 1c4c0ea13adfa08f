"""The fast path of ``validate_batch`` (issue 12, item 4) answers as the field-by-field check.

``_fast_batch`` accepts only what is certainly valid and leaves the rest to
``_checked_batch``, which says the first fault; these tests hold the two to the same answer
for thousands of batches an agent could send, valid and broken in every field.
"""

from __future__ import annotations

import copy
import json
import math
import random
from typing import Any

import pytest

from hostpulse.errors import ApiError
from hostpulse.payloads import decode_json
from hostpulse.samples import (
    DEFAULT_LIMITS,
    MAX_NAME_LENGTH,
    Batch,
    BatchError,
    Limits,
    TimeWindow,
    _checked_batch,
    _fast_batch,
    validate_batch,
)

NOW = 1_764_000_000.0
WINDOW = TimeWindow(NOW, 300.0, 86400.0)


def good() -> dict[str, Any]:
    return {
        "host": "Web-1.example",
        "run": "r_1-x",
        "seq": 41,
        "dropped": 2,
        "interval": 10.0,
        "samples": [
            {"ts": NOW - 5.5, "values": {"cpu_percent": 12.5, "disk_usage./.percent": 61.0}},
            {"ts": NOW - 0.5, "values": {"virtual_memory.percent": 33.25}},
        ],
    }


ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**63,
    2**63 - 1,
    2**64,
    10**400,
    1.5,
    -0.0,
    0.0,
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    "1",
    "",
    "web 1",
    "a" * 201,
    "a" * 200,
    "é",
    "tab\there",
    [],
    [1.0],
    {},
    {"x": 1.0},
    NOW,
    NOW + 301.0,
    NOW - 86401.0,
    NOW + 299.0,
    -5.0,
    10.0,
    604800.0,
    604801.0,
]
ODD_NAMES: list[Any] = ["", "ok", "a" * MAX_NAME_LENGTH, "a" * (MAX_NAME_LENGTH + 1), "é", "\x7f", "new\nline", " "]


def mutate(obj: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One or a few changes anywhere in the batch: a field set to an odd value, removed, added."""
    obj = copy.deepcopy(obj)
    for _ in range(rng.randint(1, 3)):
        where = rng.random()
        if where < 0.3:  # a top-level field
            key = rng.choice(["host", "run", "seq", "dropped", "interval", "goodbye", "samples", "extra"])
            if rng.random() < 0.2:
                obj.pop(key, None)
            else:
                obj[key] = rng.choice(ODD_VALUES)
        elif where < 0.5 and isinstance(obj.get("samples"), list) and obj["samples"]:  # a sample's field
            sample = rng.choice(obj["samples"])
            if isinstance(sample, dict):
                key = rng.choice(["ts", "values", "extra"])
                if rng.random() < 0.2:
                    sample.pop(key, None)
                else:
                    sample[key] = rng.choice(ODD_VALUES)
        elif isinstance(obj.get("samples"), list) and obj["samples"]:  # a value or a name
            sample = rng.choice(obj["samples"])
            if isinstance(sample, dict) and isinstance(sample.get("values"), dict):
                values = sample["values"]
                if rng.random() < 0.5:
                    values[rng.choice(ODD_NAMES)] = rng.uniform(-1e6, 1e6)
                elif values:
                    values[rng.choice(list(values))] = rng.choice(ODD_VALUES)
    return obj


def outcome(check: Any, obj: object, limits: Limits = DEFAULT_LIMITS) -> Batch | tuple[str, str, int | None, int]:
    try:
        return check(obj, limits, WINDOW)  # type: ignore[no-any-return]
    except BatchError as exc:
        return (exc.code, exc.message, exc.seq, exc.status)


def test_a_good_batch_is_taken_by_the_fast_path_and_equals_the_checked_one() -> None:
    obj = good()
    fast = _fast_batch(obj, DEFAULT_LIMITS, WINDOW)
    assert fast is not None
    assert fast == _checked_batch(obj, DEFAULT_LIMITS, WINDOW)
    assert fast.host == "web-1.example" and fast.samples[0].values == {
        "cpu_percent": 12.5,
        "disk_usage./.percent": 61.0,
    }
    obj["samples"][0]["values"]["cpu_percent"] = 99.0  # the batch holds its own values
    assert fast.samples[0].values["cpu_percent"] == 12.5


@pytest.mark.parametrize("seed", range(8))
def test_fast_and_checked_paths_answer_alike_for_broken_batches(seed: int) -> None:
    rng = random.Random(seed)
    taken = refused = 0
    for _ in range(1500):
        obj = mutate(good(), rng)
        checked = outcome(_checked_batch, obj)
        fast = _fast_batch(obj, DEFAULT_LIMITS, WINDOW)
        if fast is not None:  # the fast path never takes what the check refuses, nor takes it otherwise
            assert fast == checked, obj
            taken += 1
        else:
            refused += 1
        assert outcome(lambda o, lim, win: validate_batch(o, lim, win), obj) == checked
    assert taken > 50 and refused > 500  # both paths exercised


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["samples"][0]["values"].__setitem__("x", math.nan),
        lambda b: b["samples"][0]["values"].__setitem__("x", math.inf),
        lambda b: b["samples"][0]["values"].update({"a": 1e308, "b": 1e308}),  # finite, their sum is not
        lambda b: b["samples"][0]["values"].__setitem__("x", 3),  # an int: taken, as a float
        lambda b: b["samples"][0]["values"].__setitem__("x", True),
        lambda b: b["samples"][0]["values"].__setitem__("", 1.0),
        lambda b: b["samples"][0]["values"].__setitem__("é", 1.0),
        lambda b: b["samples"][0]["values"].__setitem__("x" * 201, 1.0),
        lambda b: b["samples"][0].__setitem__("ts", math.inf),
        lambda b: b["samples"][0].__setitem__("ts", int(NOW)),  # an int ts: taken, as a float
        lambda b: b["samples"][0].__setitem__("ts", NOW + 301.0),
        lambda b: b["samples"][0].__setitem__("ts", NOW - 86401.0),
        lambda b: b.__setitem__("samples", []),
        lambda b: b.update(samples=[], goodbye=True),
        lambda b: b.__setitem__("goodbye", 1),
        lambda b: b.__setitem__("interval", "10"),
        lambda b: b.__setitem__("seq", 2**63),
        lambda b: b.__setitem__("host", "-bad-"),
    ],
)
def test_edges_answer_alike(change: Any) -> None:
    obj = good()
    change(obj)
    assert outcome(lambda o, lim, win: validate_batch(o, lim, win), obj) == outcome(_checked_batch, obj)


def test_the_limits_hold_on_the_fast_path() -> None:
    obj = good()
    assert outcome(_fast_batch, obj, Limits(max_samples=1)) is None
    assert outcome(_fast_batch, obj, Limits(max_values=2)) is None
    assert outcome(lambda o, lim, win: validate_batch(o, lim, win), obj, Limits(max_values=2))[0] == "payload_too_large"


def test_a_windowless_check_refuses_an_infinite_ts() -> None:
    obj = good()
    obj["samples"][0]["ts"] = math.inf
    assert _fast_batch(obj, DEFAULT_LIMITS, None) is None
    with pytest.raises(BatchError, match="finite"):
        validate_batch(obj)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(good()),
        "",
        "  \n",
        "\u00a0",  # not JSON whitespace: invalid, not empty
        "\ufeff" + json.dumps(good()),  # a BOM: as json.loads reads the UTF-8 bytes
        "\x00{}",  # a NUL in the first four: read as UTF-16 from bytes
        "[" * 600 + "]" * 600,
        '{"a": NaN}',
        "{",
    ],
)
def test_text_decodes_as_its_utf8_bytes(text: str) -> None:
    def answer(raw: bytes | str) -> object:
        try:
            return decode_json(raw)
        except ApiError as exc:
            return (exc.code, exc.error, exc.description)

    from_text, from_bytes = answer(text), answer(text.encode())
    if isinstance(from_text, float) or (isinstance(from_text, dict) and "a" in from_text):
        assert repr(from_text) == repr(from_bytes)  # NaN != NaN
    else:
        assert from_text == from_bytes
