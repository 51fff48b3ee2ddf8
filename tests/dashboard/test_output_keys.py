"""Picking metrics out of an output: CPU keys, numbers only, display order."""

from __future__ import annotations

import math

from monitoring_dashboard.output_keys import cpu_index, cpu_label, display_order, numeric_values


def test_cpu_index_reads_only_the_contract_key_shape():
    assert cpu_index("avg-util-cpu0-60sec") == 0
    assert cpu_index("avg-util-cpu63-60sec") == 63
    assert cpu_index("avg-util-cpu-60sec") is None
    assert cpu_index("avg-util-cpu1-60sec-extra") is None
    assert cpu_index("percent-network-egress") is None


def test_numeric_values_keep_finite_numbers_only():
    output = {
        "a": 1,
        "b": 2.5,
        "flag": True,
        "timestamp": "2026-11-27 23:22:01.123456",
        "nan": math.nan,
        "inf": math.inf,
        "none": None,
        "nested": {"x": 1},
    }
    assert numeric_values(output) == {"a": 1.0, "b": 2.5}


def test_display_order_puts_headline_metrics_then_cpus_by_number_then_others():
    names = [
        "zeta",
        "avg-util-cpu10-60sec",
        "percent-memory-caching",
        "avg-util-cpu2-60sec",
        "alpha",
        "percent-network-egress",
    ]
    assert display_order(names) == [
        "percent-network-egress",
        "percent-memory-caching",
        "avg-util-cpu2-60sec",
        "avg-util-cpu10-60sec",
        "alpha",
        "zeta",
    ]


def test_cpu_label_is_short():
    assert cpu_label("avg-util-cpu12-60sec") == "CPU 12"
    assert cpu_label("other") == "other"


def test_numeric_values_skip_integers_beyond_float_range():
    output = {"a": 1, "huge": 10**400, "negative": -(10**309), "big": 10**300}
    assert numeric_values(output) == {"a": 1.0, "big": 1e300}
