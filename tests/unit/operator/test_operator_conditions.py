"""Conditions follow the Kubernetes API conventions: lastTransitionTime moves only on a flip."""

from __future__ import annotations

import datetime

from kubeoidc_operator.conditions import Condition, find_condition, format_time, parse_time, set_conditions

T0 = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(hours=1)


def test_a_new_condition_gets_the_current_time_and_generation() -> None:
    conditions = set_conditions([], [Condition("Ready", "True", "Reconciled", "Fine.")], generation=3, now=T0)
    assert conditions == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Reconciled",
            "message": "Fine.",
            "lastTransitionTime": "2025-01-01T12:00:00Z",
            "observedGeneration": 3,
        }
    ]


def test_last_transition_time_stays_when_only_reason_or_message_change() -> None:
    first = set_conditions(None, [Condition("Ready", "False", "SecretConflict", "A.")], generation=1, now=T0)
    second = set_conditions(first, [Condition("Ready", "False", "InvalidSpec", "B.")], generation=2, now=T1)
    assert second[0]["lastTransitionTime"] == "2025-01-01T12:00:00Z"
    assert (second[0]["reason"], second[0]["message"], second[0]["observedGeneration"]) == (
        "InvalidSpec",
        "B.",
        2,
    )


def test_last_transition_time_moves_when_the_status_flips() -> None:
    first = set_conditions(None, [Condition("Ready", "False", "SecretConflict", "A.")], generation=1, now=T0)
    second = set_conditions(first, [Condition("Ready", "True", "Reconciled", "B.")], generation=1, now=T1)
    assert second[0]["lastTransitionTime"] == "2025-01-01T13:00:00Z"


def test_an_unreadable_transition_time_is_replaced() -> None:
    current = [
        {"type": "Ready", "status": "True", "reason": "X", "message": "", "lastTransitionTime": "never"}
    ]
    result = set_conditions(current, [Condition("Ready", "True", "X", "")], generation=None, now=T1)
    assert result[0]["lastTransitionTime"] == "2025-01-01T13:00:00Z"
    assert "observedGeneration" not in result[0]


def test_other_conditions_keep_their_place_and_content() -> None:
    other = {"type": "Custom", "status": "True", "reason": "Mine", "message": "m", "lastTransitionTime": "x"}
    current = [
        other,
        {"type": "Ready", "status": "True", "reason": "R", "message": "", "lastTransitionTime": "y"},
    ]
    result = set_conditions(current, [Condition("Ready", "False", "R2", "m2")], generation=1, now=T0)
    assert result[0] == other
    assert result[1]["type"] == "Ready"
    assert find_condition(result, "Custom") == other
    assert find_condition(result, "Missing") is None


def test_times_are_rfc3339_utc_with_a_z() -> None:
    moment = datetime.datetime(
        2025, 1, 1, 14, 0, 0, 999, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    assert format_time(moment) == "2025-01-01T12:00:00Z"
    assert parse_time("2025-01-01T12:00:00Z") == T0
    assert parse_time("2025-01-01T12:00:00") is None
    assert parse_time(None) is None
