"""The lean histogram exposes what prometheus_client's own Histogram does for the same values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shared_db.histogram import LeanHistogram
from shared_db.metrics import SECONDS

# Bounds themselves, values just either side of them, and anything from 0 to past the last.
values = st.one_of(st.sampled_from(SECONDS), st.floats(0, 20, allow_nan=False),
                   st.sampled_from(SECONDS).map(lambda b: b * (1 + 1e-12)),
                   st.sampled_from(SECONDS).map(lambda b: b * (1 - 1e-12)))


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if not s.name.endswith("_created")}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["users.get", "payments.create"]), values),
                max_size=60))
def test_same_exposition_as_prometheus_client(observed: list[tuple[str, float]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("t_seconds", "t", ["query"], buckets=SECONDS, registry=theirs)
    lean = LeanHistogram("t_seconds", "t", ["query"], SECONDS, ours)
    observers = {}
    for query, value in observed:
        reference.labels(query).observe(value)
        observers.setdefault(query, lean.child(query))(value)
    expected, found = _samples(theirs), _samples(ours)
    assert found.keys() == expected.keys()
    for key, value in expected.items():
        if key[0].endswith("_sum"):  # the same floats, perhaps rounded at another step
            assert abs(found[key] - value) <= 1e-9 * max(1.0, abs(value))
        else:
            assert found[key] == value


def test_a_value_on_a_bound_is_in_that_bucket() -> None:
    registry = CollectorRegistry()
    LeanHistogram("w_seconds", "w", ["role"], (0.001, 0.01), registry).child("primary")(0.001)
    found = _samples(registry)
    assert found[("w_seconds_bucket", (("le", "0.001"), ("role", "primary")))] == 1
    assert found[("w_seconds_bucket", (("le", "+Inf"), ("role", "primary")))] == 1
    assert found[("w_seconds_count", (("role", "primary"),))] == 1
    assert found[("w_seconds_sum", (("role", "primary"),))] == 0.001
