"""Flattening psutil results and validating batches at every edge."""

from __future__ import annotations

import copy
import json
import math
from collections import namedtuple
from typing import Any

import psutil
import pytest

from hostpulse.samples import (
    Batch,
    BatchError,
    Limits,
    flatten,
    valid_host,
    valid_name,
    validate_batch,
    wire_bytes,
)


def good() -> dict[str, Any]:
    return {
        "host": "web-1",
        "run": "Zx_9-a",
        "seq": 41,
        "dropped": 0,
        "samples": [{"ts": 1764000000.0, "values": {"cpu_percent": 12.5, "virtual_memory.percent": 61}}],
    }


def refused(obj: object, **kwargs: Any) -> BatchError:
    with pytest.raises(BatchError) as info:
        validate_batch(obj, **kwargs)
    return info.value


# --- flatten -----------------------------------------------------------------------------


def test_flatten_named_tuple_gives_name_dot_field() -> None:
    Mem = namedtuple("Mem", "total percent")
    assert flatten("virtual_memory", Mem(100, 61.5)) == {
        "virtual_memory.total": 100.0,
        "virtual_memory.percent": 61.5,
    }


def test_flatten_per_core_list_and_plain_number() -> None:
    assert flatten("cpu_percent", [1, 2.5]) == {"cpu_percent.0": 1.0, "cpu_percent.1": 2.5}
    assert flatten("cpu_percent", 7) == {"cpu_percent": 7.0}


def test_flatten_dict_of_named_tuples_per_mount_and_nic() -> None:
    Usage = namedtuple("Usage", "total used free percent")
    got = flatten("disk_usage", {"/": Usage(10, 4, 6, 40.0), "/boot": Usage(2, 1, 1, 50.0)})
    assert got["disk_usage./.percent"] == 40.0
    assert got["disk_usage./boot.free"] == 1.0
    assert len(got) == 8


def test_flatten_drops_non_numbers_and_non_finite_and_maps_bools() -> None:
    Stats = namedtuple("Stats", "isup duplex speed mtu flags")
    got = flatten("net_if_stats", {"lo": Stats(True, None, 0, 65536, "up,loopback")})
    assert got == {"net_if_stats.lo.isup": 1.0, "net_if_stats.lo.speed": 0.0, "net_if_stats.lo.mtu": 65536.0}
    assert flatten("x", [math.nan, math.inf, -math.inf, 1]) == {"x.3": 1.0}
    assert flatten("x", None) == {}
    assert flatten("x", 10**400) == {}


def test_flatten_leaves_out_names_the_service_would_refuse() -> None:
    got = flatten("disk_usage", {"/mnt/ünïcode": 1, "/mnt/" + "a" * 300: 2, "/mnt/tab\there": 3, "/ok": 4})
    assert got == {"disk_usage./ok": 4.0}


def test_flatten_real_psutil_results_validate() -> None:
    values: dict[str, float] = {}
    values.update(flatten("virtual_memory", psutil.virtual_memory()))
    values.update(flatten("cpu_percent", psutil.cpu_percent(percpu=True)))
    values.update(flatten("net_io_counters", psutil.net_io_counters(pernic=True)))
    values.update(flatten("disk_usage", {"/": psutil.disk_usage("/")}))
    assert "virtual_memory.percent" in values and "disk_usage./.percent" in values
    batch = {"host": "h", "run": "r", "seq": 0, "samples": [{"ts": 1.0, "values": values}]}
    assert validate_batch(batch).samples[0].values == values


# --- validate_batch: accepted ------------------------------------------------------------


def test_good_batch_is_typed_and_round_trips() -> None:
    batch = validate_batch(good())
    assert isinstance(batch, Batch)
    assert batch.key == ("web-1", "Zx_9-a", 41)
    assert batch.samples[0].values == {"cpu_percent": 12.5, "virtual_memory.percent": 61.0}
    assert all(isinstance(v, float) for v in batch.samples[0].values.values())
    assert validate_batch(json.loads(json.dumps(batch.as_json()))) == batch


def test_wire_bytes_are_compact_json_and_refuse_nan() -> None:
    body = wire_bytes("web-1", "r", 3, 2, [(5.0, {"n": 1.5})])
    assert body == b'{"host":"web-1","run":"r","seq":3,"dropped":2,"samples":[{"ts":5.0,"values":{"n":1.5}}]}'
    assert validate_batch(json.loads(body)).as_json() == json.loads(body)
    with pytest.raises(ValueError):
        wire_bytes("web-1", "r", 3, 0, [(5.0, {"n": math.nan})])


def test_dropped_is_optional_and_host_is_lower_cased() -> None:
    obj = good()
    del obj["dropped"]
    obj["host"] = "Web-1.Example.COM"
    batch = validate_batch(obj)
    assert batch.dropped == 0
    assert batch.host == "web-1.example.com"


@pytest.mark.parametrize(
    "host",
    ["a", "1", "web-1", "a.b.c", "x" * 63, ".".join(["a" * 63] * 3) + "." + "b" * 61, "123.45"],
)
def test_rfc1123_hosts_accepted(host: str) -> None:
    assert len(host) <= 253
    assert valid_host(host)
    assert validate_batch({**good(), "host": host}).host == host.lower()


@pytest.mark.parametrize("seq", [0, 1, 2**63 - 1])
def test_seq_edges_accepted(seq: int) -> None:
    assert validate_batch({**good(), "seq": seq}).seq == seq


def test_name_of_exactly_200_printable_characters_is_accepted() -> None:
    name = "".join(chr(c) for c in range(0x20, 0x7F)) + "x" * (200 - 95)
    assert len(name) == 200 and valid_name(name)
    obj = good()
    obj["samples"][0]["values"] = {name: 1}
    assert name in validate_batch(obj).samples[0].values


def test_limits_edges_exactly_at_the_cap_pass() -> None:
    limits = Limits(max_samples=3, max_values=6)
    obj = good()
    obj["samples"] = [{"ts": float(i), "values": {"a": 1, "b": 2}} for i in range(3)]
    assert len(validate_batch(obj, limits).samples) == 3


# --- validate_batch: refused -------------------------------------------------------------


@pytest.mark.parametrize("obj", [None, [], [good()], "batch", 3, True])
def test_not_an_object(obj: object) -> None:
    err = refused(obj)
    assert err.seq is None and err.code == "bad_request" and "object" in err.message


@pytest.mark.parametrize("field", ["host", "run", "seq", "samples"])
def test_missing_field_names_it_and_echoes_seq(field: str) -> None:
    obj = good()
    del obj[field]
    err = refused(obj)
    assert err.code == "missing_field" and field in err.message
    assert err.seq == (None if field == "seq" else 41)
    assert err.as_json() == {"error": "missing_field", "message": err.message, "seq": err.seq}


def test_extra_field() -> None:
    err = refused({**good(), "hostname": "x"})
    assert "hostname" in err.message and err.seq == 41


@pytest.mark.parametrize("seq", [-1, 1.0, "41", True, None, 2.5])
def test_bad_seq(seq: object) -> None:
    err = refused({**good(), "seq": seq})
    assert err.seq is None and "seq" in err.message


@pytest.mark.parametrize(
    "host",
    [
        "",
        "-web",
        "web-",
        "web_1",
        "a..b",
        "web.",
        ".web",
        "x" * 64,
        "a." * 126 + "ab",  # 254 characters
        "wéb",
        "web 1",
        "web\n1",
        7,
        None,
        ["web"],
    ],
)
def test_bad_host(host: object) -> None:
    err = refused({**good(), "host": host})
    assert err.seq == 41 and "host" in err.message


@pytest.mark.parametrize("run", ["", "x" * 65, "a b", "a/b", "ä", 5, None, "a.b"])
def test_bad_run(run: object) -> None:
    assert "run" in refused({**good(), "run": run}).message


@pytest.mark.parametrize("dropped", [-1, 1.5, "0", True, None])
def test_bad_dropped(dropped: object) -> None:
    assert "dropped" in refused({**good(), "dropped": dropped}).message


@pytest.mark.parametrize("samples", [[], {}, None, "x", {"ts": 1, "values": {"a": 1}}])
def test_bad_samples_container(samples: object) -> None:
    assert "samples" in refused({**good(), "samples": samples}).message


@pytest.mark.parametrize(
    "sample, words",
    [
        (5, "must be an object"),
        ({"ts": 1.0}, "values"),
        ({"values": {"a": 1}}, "ts"),
        ({"ts": 1.0, "values": {"a": 1}, "host": "x"}, "unknown"),
        ({"ts": math.nan, "values": {"a": 1}}, "ts"),
        ({"ts": math.inf, "values": {"a": 1}}, "ts"),
        ({"ts": -1.0, "values": {"a": 1}}, "ts"),
        ({"ts": "1", "values": {"a": 1}}, "ts"),
        ({"ts": True, "values": {"a": 1}}, "ts"),
        ({"ts": 1.0, "values": {}}, "empty"),
        ({"ts": 1.0, "values": [1, 2]}, "values"),
    ],
)
def test_bad_sample(sample: object, words: str) -> None:
    err = refused({**good(), "samples": [sample]})
    assert words in err.message and err.seq == 41


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, False, None, "1", [1], {"a": 1}, 10**400])
def test_bad_values(value: object) -> None:
    obj = good()
    obj["samples"][0]["values"]["cpu_percent"] = value
    err = refused(obj)
    assert "finite number" in err.message and "cpu_percent" in err.message


def test_nan_and_infinity_as_parsed_from_json_text() -> None:
    # json.loads accepts these literals by default: validation is what refuses them.
    for literal in ("NaN", "Infinity", "-Infinity"):
        text = json.dumps(good()).replace("12.5", literal)
        assert "finite" in refused(json.loads(text)).message


@pytest.mark.parametrize("name", ["", "x" * 201, "cpu\tpercent", "cpu\x7f", "cpü", "new\nline", "\x00"])
def test_bad_names(name: str) -> None:
    obj = good()
    obj["samples"][0]["values"] = {name: 1.0}
    err = refused(obj)
    assert "printable ASCII" in err.message


def test_too_many_samples_is_payload_too_large() -> None:
    obj = good()
    obj["samples"] = [copy.deepcopy(obj["samples"][0]) for _ in range(4)]
    err = refused(obj, limits=Limits(max_samples=3))
    assert (err.code, err.status, err.seq) == ("payload_too_large", 413, 41)


def test_too_many_values_is_payload_too_large() -> None:
    obj = good()
    obj["samples"] = [{"ts": float(i), "values": {"a": 1, "b": 2, "c": 3}} for i in range(3)]
    err = refused(obj, limits=Limits(max_values=8))
    assert err.code == "payload_too_large" and "9 values" in err.message


def test_bad_second_sample_refuses_the_whole_batch() -> None:
    obj = good()
    obj["samples"].append({"ts": 2.0, "values": {"ok": math.nan}})
    assert "samples[1]" in refused(obj).message
