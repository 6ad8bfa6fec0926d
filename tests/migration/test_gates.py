"""The migrator's health gates: parsing ``--gate`` text, and judging one window."""

from __future__ import annotations

import pytest

from llmstruct.migration.gates import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Gate,
    GateError,
    Window,
    decide,
    evaluate,
    parse_gate,
)


def window(**changes) -> Window:
    base = dict(
        custom_requests=100, custom_errors=0, legacy_requests=100, legacy_errors=0,
        custom_p95_ms=5.0, legacy_p95_ms=20.0, custom_rss=40, legacy_rss=80,
    )  # fmt: skip
    return Window(**{**base, **changes})


@pytest.mark.parametrize(
    ("text", "gate"),
    [
        ("error_rate<=0.01", Gate("error_rate", "<=", 0.01)),
        ("p95_ratio<1", Gate("p95_ratio", "<", 1.0)),
        (" rss_ratio <= 1.5 ", Gate("rss_ratio", "<=", 1.5)),
        ("error_rate>=0", Gate("error_rate", ">=", 0.0)),
        ("p95_ratio>2e-1", Gate("p95_ratio", ">", 0.2)),
    ],
)
def test_parses_metric_operator_and_limit(text, gate):
    assert parse_gate(text) == gate


def test_gate_prints_back_as_it_parses():
    assert str(parse_gate("error_rate<=0.010")) == "error_rate<=0.01"
    assert parse_gate(str(parse_gate("p95_ratio<1.25"))) == parse_gate("p95_ratio<1.25")


@pytest.mark.parametrize(
    "text", ["p95_ratio<1.0000001", "error_rate<=0.0123456789", "rss_ratio>1e-9"]
)
def test_a_gate_keeps_its_exact_limit_through_the_plan_on_disk(text):
    gate = parse_gate(text)
    assert parse_gate(str(gate)) == gate


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("foo<=1", "unknown metric 'foo'"),
        ("error_rate<=abc", "the limit 'abc' is not a number"),
        ("error_rate", "expected METRIC OP NUMBER"),
        ("error_rate=0.1", "expected METRIC OP NUMBER"),
        ("error_rate<=", "expected METRIC OP NUMBER"),
        ("<=0.1", "expected METRIC OP NUMBER"),
        ("error_rate<=nan", "finite number >= 0"),
        ("error_rate<=inf", "finite number >= 0"),
        ("error_rate<=-1", "finite number >= 0"),
        ("error_rate<=0.1<=2", "is not a number"),
    ],
)
def test_rejects_a_bad_expression_with_a_clear_message(text, says):
    with pytest.raises(GateError) as caught:
        parse_gate(text)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_error_rate_counts_custom_errors_only():
    gate = parse_gate("error_rate<=0.01")
    result = evaluate(gate, window(custom_errors=1, legacy_errors=50), min_samples=20)
    assert result.outcome == PASS
    assert result.value == pytest.approx(0.01)
    failed = evaluate(gate, window(custom_errors=2), min_samples=20)
    assert failed.outcome == FAIL
    assert failed.value == pytest.approx(0.02)
    assert "error_rate = 0.02 breaks the limit <= 0.01" in failed.reason


def test_p95_ratio_and_rss_ratio_are_custom_over_legacy():
    p95 = evaluate(parse_gate("p95_ratio<=1"), window(), min_samples=20)
    assert (p95.outcome, p95.value) == (PASS, pytest.approx(0.25))
    slow = evaluate(parse_gate("p95_ratio<=1"), window(custom_p95_ms=30.0), min_samples=20)
    assert (slow.outcome, slow.value) == (FAIL, pytest.approx(1.5))
    rss = evaluate(parse_gate("rss_ratio<=1"), window(custom_rss=100), min_samples=20)
    assert (rss.outcome, rss.value) == (FAIL, pytest.approx(1.25))


def test_too_few_custom_samples_is_inconclusive_not_a_pass():
    gate = parse_gate("error_rate<=0.01")
    result = evaluate(gate, window(custom_requests=19), min_samples=20)
    assert result.outcome == INCONCLUSIVE
    assert result.value is None
    assert "only 19 custom requests" in result.reason and "--min-samples 20" in result.reason
    assert evaluate(gate, window(custom_requests=0), min_samples=1).outcome == INCONCLUSIVE


def test_p95_ratio_falls_back_to_the_last_legacy_baseline():
    gate = parse_gate("p95_ratio<=1")
    alone = window(legacy_requests=0, legacy_p95_ms=None)
    assert evaluate(gate, alone, min_samples=20).outcome == INCONCLUSIVE
    based = window(legacy_requests=3, legacy_p95_ms=1.0, baseline_legacy_p95_ms=10.0)
    result = evaluate(gate, based, min_samples=20)
    assert (result.outcome, result.value) == (PASS, pytest.approx(0.5))


def test_unreadable_rss_is_inconclusive():
    result = evaluate(parse_gate("rss_ratio<=1"), window(legacy_rss=None), min_samples=1)
    assert result.outcome == INCONCLUSIVE
    assert "legacy server's process_resident_memory_bytes" in result.reason
    # With the reader's problem, the reason says what went wrong.
    told = window(custom_rss=None, custom_rss_problem="http://c/api/v1/system/metrics answered 401")
    result = evaluate(parse_gate("rss_ratio<=1"), told, min_samples=1)
    assert result.reason == (
        "rss_ratio: could not read the custom server's process_resident_memory_bytes "
        "(http://c/api/v1/system/metrics answered 401)"
    )


def test_one_failure_fails_the_window_and_one_unknown_holds_it():
    ok = evaluate(parse_gate("error_rate<=0.5"), window(), 20)
    bad = evaluate(parse_gate("rss_ratio<0.1"), window(), 20)
    unsure = evaluate(parse_gate("rss_ratio<=1"), window(custom_rss=None), 20)
    assert decide([ok, ok]) == PASS
    assert decide([ok, unsure]) == INCONCLUSIVE
    assert decide([unsure, bad, ok]) == FAIL
