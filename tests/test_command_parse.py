"""MQTT commands: exactly the payloads docs/mqtt.md allows, a helpful sentence for all others."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.command_parse import (
    MAX_PAYLOAD_BYTES,
    Command,
    CommandRefused,
    RateLimiter,
    parse_command,
)

FAST = settings(max_examples=300)  # the default 200 ms deadline stays: parsing must be quick
FIELDS = ("id", "level", "on", "mode", "duration")


def _refusal(payload: bytes) -> CommandRefused:
    with pytest.raises(CommandRefused) as caught:
        parse_command(payload)
    return caught.value


def _assert_one_line(message: str) -> None:
    assert message
    assert message.isprintable()  # no line breaks or control characters in an Ack's error
    message.encode("utf-8")  # and always encodable


# --------------------------------------------------------------------------------------------
# the examples in docs/mqtt.md


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"on": true}', Command(id=None, level=None, on=True, auto=False, duration_s=None)),
        (
            b'{"level": 40, "duration": 7200}',
            Command(id=None, level=40, on=None, auto=False, duration_s=7200),
        ),
        (
            b'{"id": "maint-0311", "level": 0, "duration": 14400}',
            Command(id="maint-0311", level=0, on=None, auto=False, duration_s=14400),
        ),
        (
            b'{"on": false, "duration": 3600}',
            Command(id=None, level=None, on=False, auto=False, duration_s=3600),
        ),
        (
            b'{"id": "ops-0150", "mode": "auto"}',
            Command(id="ops-0150", level=None, on=None, auto=True, duration_s=None),
        ),
        (
            b'{"id": "ops-0142", "level": 40, "duration": 7200}',
            Command(id="ops-0142", level=40, on=None, auto=False, duration_s=7200),
        ),
    ],
)
def test_the_documented_examples_parse_exactly(payload: bytes, expected: Command) -> None:
    assert parse_command(payload) == expected


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        # not JSON
        (b"level=40", ["not valid JSON", '{"level": 40}']),
        (b"", ["empty", "JSON object"]),
        (b"  \n ", ["empty", "JSON object"]),
        # not a JSON object
        (b"40", ["must be a JSON object", "got 40"]),
        (b"[40]", ["must be a JSON object", "got a list"]),
        (b'"on"', ["must be a JSON object", 'got the text "on"']),
        # an unknown field
        (b'{"level": 40, "zone": "soi-3"}', ['unknown field "zone"', "topic"]),
        (b'{"Level": 40}', ['unknown field "Level"', 'use "level"']),
        (b'{"level": 40, "until": "23:00"}', ['unknown field "until"', "duration"]),
        # a field of the wrong type
        (b'{"level": "40"}', ["level must be an integer", 'got the text "40"', "without quotes"]),
        (b'{"level": 40.5}', ["level must be an integer", "got 40.5", "whole number"]),
        (b'{"level": 40.0}', ["level must be an integer", "got 40.0", "decimal point"]),
        (b'{"level": true}', ["level must be an integer", "got true", "use on"]),
        (b'{"on": "true"}', ["on must be true or false", 'got the text "true"', "without quotes"]),
        (b'{"on": 1}', ["on must be true or false", "got 1"]),
        (b'{"level": 40, "duration": "2h"}', ["duration must be", 'got the text "2h"', "7200"]),
        (b'{"id": 17, "on": true}', ["id must be text", "got 17", '"17"']),
        # a value out of range
        (b'{"level": 140}', ["level must be an integer from 0 to 100, got 140"]),
        (b'{"level": -5}', ["level must be an integer from 0 to 100, got -5"]),
        (b'{"level": 40, "duration": 30}', ["from 60 to 86400", "got 30"]),
        (b'{"level": 40, "duration": 172800}', ["from 60 to 86400", "got 172800"]),
        (b'{"mode": "manual"}', ['mode must be "auto"', 'got the text "manual"', "level or on"]),
        (b'{"id": "", "on": true}', ["id is empty", "leave id out"]),
        (b'{"id": "' + b"x" * 65 + b'", "on": true}', ["id is 65 characters", "at most 64"]),
        (b'{"id": "a\\nb", "on": true}', ["cannot be printed", "\\n", "no line breaks"]),
        (b'{"id": "a\\u0007b", "on": true}', ["cannot be printed", "\\x07"]),
        # without exactly one action
        (b"{}", ["no action", "exactly one of level"]),
        (b'{"id": "c-1"}', ["no action", "exactly one of level"]),
        (b'{"duration": 600}', ["no action", "exactly one of level"]),
        (b'{"level": 40, "on": true}', ["2 actions (level and on)", "exactly one"]),
        (b'{"on": true, "mode": "auto"}', ["2 actions (on and mode)", "exactly one"]),
        # duration with mode
        (b'{"mode": "auto", "duration": 600}', ["duration does not go with mode", "remove"]),
        # too large
        (
            b'{"level": 40, "id": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}',
            ["bytes, more than the 1024 allowed"],
        ),
    ],
)
def test_each_documented_refusal_says_what_is_wrong_and_how_to_fix_it(
    payload: bytes, words: list[str]
) -> None:
    message = str(_refusal(payload))
    _assert_one_line(message)
    assert ":" in message or "," in message  # the problem, then what is expected or to do
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b'{"level": 1, "level": 2}', ['"level" appears more than once']),
        (b'{"on": true, "id": "a", "id": "b"}', ['"id" appears more than once']),
        (b'{"level": NaN}', ["NaN", "finite"]),
        (b'{"level": Infinity}', ["Infinity"]),
        (b'{"level": -Infinity}', ["-Infinity"]),
        (b'{"level": 1e400}', ["too large"]),
        (b"[" * 1000, ["nested too deeply"]),
        (b'{"level": ' + b"[" * 1000 + b"}", ["nested too deeply"]),
        (b"\xff\xfe{}", ["not UTF-8"]),
        ('{"on": true}'.encode("utf-16"), ["not UTF-8"]),
        (b'\xef\xbb\xbf{"on": true}', ["byte order mark"]),
        (b'{"on": true} {"on": false}', ["not valid JSON"]),
        (b'{"on": true, "zone": 1, "group": 2, "until": 3, "x": 4}', ["fields", "and 1 more"]),
        (b'{"id": null, "on": true}', ["id must be text", "got null"]),
        (b'{"id": "\\ud800", "on": true}', ["cannot be printed", "\\ud800"]),
        (b'{"level": [40]}', ["got a list"]),
        (b'{"on": {"x": 1}}', ["got an object"]),
        (b'{"level": ' + b"9" * 500 + b"}", ["500-digit number"]),
    ],
)
def test_other_malformed_payloads_are_refused_with_a_sentence(
    payload: bytes, words: list[str]
) -> None:
    message = str(_refusal(payload))
    _assert_one_line(message)
    for word in words:
        assert word in message


def test_an_exactly_full_size_payload_is_read() -> None:
    head = b'{"on": true, "id": "x"}'
    payload = head[:-1] + b" " * (MAX_PAYLOAD_BYTES - len(head)) + b"}"
    assert len(payload) == MAX_PAYLOAD_BYTES
    assert parse_command(payload).on is True
    assert "1025 bytes" in str(_refusal(payload[:-1] + b" }"))


def test_values_at_the_edges_of_their_ranges_are_accepted() -> None:
    assert parse_command(b'{"level": 0}').level == 0
    assert parse_command(b'{"level": 100}').level == 100
    assert parse_command(b'{"on": true, "duration": 60}').duration_s == 60
    assert parse_command(b'{"on": true, "duration": 86400}').duration_s == 86400
    assert parse_command(b'{"id": "' + b"x" * 64 + b'", "on": true}').id == "x" * 64
    assert parse_command('{"id": "ไฟถนน ซอย 3", "on": true}'.encode()).id == "ไฟถนน ซอย 3"
    assert parse_command(b' {\n "level" : -0 }\t').level == 0


# --------------------------------------------------------------------------------------------
# the id in the Ack of a refused command


@pytest.mark.parametrize(
    "payload",
    [
        b'{"id": "c-18", "level": 140}',
        b'{"id": "c-18", "level": 40, "zone": "soi-3"}',
        b'{"id": "c-18"}',
        b'{"id": "c-18", "mode": "auto", "duration": 600}',
        b'{"id": "c-18", "level": 1, "level": 2}',
        b'{"level": 40, "on": true, "id": "c-18"}',
    ],
)
def test_a_valid_id_is_echoed_when_something_else_is_wrong(payload: bytes) -> None:
    assert _refusal(payload).command_id == "c-18"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"id": "", "level": 40}',
        b'{"id": 17, "level": 40}',
        b'{"id": "a\\nb", "level": 40}',
        b'{"id": "c-18", "id": "c-19", "level": 40}',
        b'{"id": "c-18", "level": NaN}',
        b'{"id": "c-18", "level": 40',
        b"[" + b'{"id": "c-18"}' + b"]",
    ],
)
def test_no_id_is_echoed_when_the_id_itself_cannot_be_trusted(payload: bytes) -> None:
    assert _refusal(payload).command_id is None


def test_a_refusal_is_a_value_error() -> None:
    assert isinstance(_refusal(b"{}"), ValueError)


# --------------------------------------------------------------------------------------------
# the Command itself


def test_level_for_follows_the_action() -> None:
    assert parse_command(b'{"level": 40}').level_for(80) == 40
    assert parse_command(b'{"level": 0}').level_for(80) == 0
    assert parse_command(b'{"on": true}').level_for(80) == 80
    assert parse_command(b'{"on": false}').level_for(80) == 0
    assert parse_command(b'{"mode": "auto"}').level_for(80) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"id": None, "level": None, "on": None, "auto": False, "duration_s": None},
        {"id": None, "level": 40, "on": True, "auto": False, "duration_s": None},
        {"id": None, "level": None, "on": None, "auto": True, "duration_s": 600},
        {"id": None, "level": 140, "on": None, "auto": False, "duration_s": None},
        {"id": None, "level": 40, "on": None, "auto": False, "duration_s": 30},
        {"id": "", "level": 40, "on": None, "auto": False, "duration_s": None},
    ],
)
def test_a_command_that_breaks_the_rules_cannot_be_built(fields: dict[str, Any]) -> None:
    with pytest.raises(CommandRefused):
        Command(**fields)


# --------------------------------------------------------------------------------------------
# properties: whatever arrives, the answer is a Command or a CommandRefused, quickly

_JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
# objects whose keys are mostly the real fields, with values of any kind: near-misses abound
_NEAR_COMMANDS = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8),
    st.sampled_from([0, 40, 100, 60, 86400, True, False, "auto", "c-1"]) | _JSON,
    max_size=6,
)


def _check_answer(payload: bytes) -> Command | CommandRefused:
    try:
        return parse_command(payload)
    except CommandRefused as exc:
        _assert_one_line(str(exc))
        return exc


@given(st.binary(max_size=MAX_PAYLOAD_BYTES + 64))
@FAST
def test_random_bytes_give_a_command_or_a_refusal(payload: bytes) -> None:
    _check_answer(payload)


@given(st.text(max_size=300))
@FAST
def test_random_text_gives_a_command_or_a_refusal(text: str) -> None:
    _check_answer(text.encode())


@given(_JSON, st.booleans())
@FAST
def test_random_json_gives_a_command_or_a_refusal(value: Any, ascii_only: bool) -> None:
    _check_answer(json.dumps(value, ensure_ascii=ascii_only).encode())


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_has_non_finite(item) for item in value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    return False


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 64 and value.isprintable()


def _is_int(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _docs_allow(obj: dict[str, Any]) -> bool:
    """docs/mqtt.md's rules, written out again independently of the parser."""
    if not set(obj) <= set(FIELDS):
        return False
    if "id" in obj and not _valid_id(obj["id"]):
        return False
    if "level" in obj and not _is_int(obj["level"], 0, 100):
        return False
    if "on" in obj and type(obj["on"]) is not bool:
        return False
    if "mode" in obj and obj["mode"] != "auto":
        return False
    if sum(name in obj for name in ("level", "on", "mode")) != 1:
        return False
    if "duration" in obj:
        return "mode" not in obj and _is_int(obj["duration"], 60, 86400)
    return True


@given(_NEAR_COMMANDS)
@FAST
def test_exactly_the_commands_the_docs_allow_are_accepted(obj: dict[str, Any]) -> None:
    payload = json.dumps(obj).encode()
    answer = _check_answer(payload)
    readable = len(payload) <= MAX_PAYLOAD_BYTES and not _has_non_finite(obj)
    if readable and _docs_allow(obj):
        assert answer == Command(
            id=obj.get("id"),
            level=obj.get("level"),
            on=obj.get("on"),
            auto="mode" in obj,
            duration_s=obj.get("duration"),
        )
    else:
        assert isinstance(answer, CommandRefused)
        echoed = obj.get("id") if readable and _valid_id(obj.get("id")) else None
        assert answer.command_id == echoed


_IDS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=64).filter(str.isprintable)
_VALID_COMMANDS = st.one_of(
    st.builds(
        Command,
        id=st.none() | _IDS,
        level=st.integers(0, 100),
        on=st.none(),
        auto=st.just(False),
        duration_s=st.none() | st.integers(60, 86400),
    ),
    st.builds(
        Command,
        id=st.none() | _IDS,
        level=st.none(),
        on=st.booleans(),
        auto=st.just(False),
        duration_s=st.none() | st.integers(60, 86400),
    ),
    st.builds(
        Command,
        id=st.none() | _IDS,
        level=st.none(),
        on=st.none(),
        auto=st.just(True),
        duration_s=st.none(),
    ),
)


def _payload(command: Command, order: list[str], ascii_only: bool) -> bytes:
    fields: dict[str, Any] = {
        "id": command.id,
        "level": command.level,
        "on": command.on,
        "mode": "auto" if command.auto else None,
        "duration": command.duration_s,
    }
    present = {name: fields[name] for name in order if fields[name] is not None}
    return json.dumps(present, ensure_ascii=ascii_only).encode()


@given(_VALID_COMMANDS, st.permutations(FIELDS), st.booleans())
@FAST
def test_a_valid_command_round_trips(command: Command, order: list[str], ascii_only: bool) -> None:
    assert parse_command(_payload(command, order, ascii_only)) == command


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * MAX_PAYLOAD_BYTES,
        b"[" * 512 + b"]" * 512,
        b'{"a":' * 204 + b"1" + b"}" * 204,
        b'{"level": ' + b"9" * (MAX_PAYLOAD_BYTES - 11) + b"}",
        b"{" + b",".join(b'"k%d":1' % i for i in range(140)) + b"}",
        b'{"id": "' + b"\\u0000" * 160 + b'", "on": true}',
        b"\xff" * MAX_PAYLOAD_BYTES,
        b"x" * 10_000_000,
    ],
)
def test_worst_case_payloads_are_refused_in_trivial_time(payload: bytes) -> None:
    start = time.perf_counter()
    _refusal(payload)
    assert time.perf_counter() - start < 0.05


# --------------------------------------------------------------------------------------------
# the rate limiter


class FakeMonotonic:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_twenty_commands_are_allowed_and_the_twenty_first_is_refused() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter(20, clock)
    for _ in range(20):
        assert limiter.allow()
        clock.now += 0.01
    assert not limiter.allow()


def test_commands_are_allowed_again_once_the_window_slides() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter(20, clock)
    for _ in range(10):
        assert limiter.allow()
    clock.now += 0.5
    for _ in range(10):
        assert limiter.allow()
    assert not limiter.allow()
    clock.now += 0.499  # the first ten are still within the last second
    assert not limiter.allow()
    clock.now += 0.001  # now they are exactly one second old: out
    for _ in range(10):
        assert limiter.allow()
    assert not limiter.allow()


def test_refused_commands_do_not_count() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter(20, clock)
    for _ in range(20):
        assert limiter.allow()
    for _ in range(1000):  # a flood, refused as it goes on
        clock.now += 0.0009
        assert not limiter.allow()
    clock.now += 0.1  # 1.0 s after the allowed ones, though the flood was 0.1 s ago
    for _ in range(20):
        assert limiter.allow()
    assert not limiter.allow()


def test_a_steady_rate_at_the_limit_is_always_allowed() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter(16, clock)
    for _ in range(500):
        assert limiter.allow()
        clock.now += 0.0625  # exact in binary, so the steps add up to exactly one second


def test_the_limit_is_per_rolling_second_not_per_clock_second() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter(20, clock)
    clock.now = 1000.9
    for _ in range(20):
        assert limiter.allow()
    clock.now = 1001.1  # a new clock second, but the same rolling one
    assert not limiter.allow()


def test_the_limiter_says_why_it_refused_and_rejects_a_limit_below_one() -> None:
    limiter = RateLimiter(20, FakeMonotonic())
    assert limiter.max_per_s == 20
    assert "at most 20 a second" in limiter.refusal
    assert "mqtt.max_commands_per_s" in limiter.refusal
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(0, FakeMonotonic())
