"""The benchmark table: fixed-width text for people, Markdown for docs/PERFORMANCE.md."""

from __future__ import annotations

import io

from bench.report import Row, Table, seconds

ROW = Row("latency p50", "300 / 20", "1.2 ms", "2.51 s", 0.000478, "≤ 5 ms", True)


def test_table_markdown_has_header_separator_and_escaped_cells() -> None:
    out = io.StringIO()
    table = Table(markdown=True, out=out)
    table.header()
    table.add(ROW)
    table.add(Row("a|b", "1", "x", "y", None, "—", None))
    lines = out.getvalue().splitlines()
    assert lines[0] == "| benchmark | samples | figure | baseline | ratio | budget | holds |"
    assert lines[1] == "|---|---|---|---|---|---|---|"
    assert lines[2] == "| latency p50 | 300 / 20 | 1.2 ms | 2.51 s | 0.000478x | ≤ 5 ms | yes |"
    assert lines[3] == "| a\\|b | 1 | x | y | — | — | — |"


def test_table_text_aligns_columns() -> None:
    out = io.StringIO()
    table = Table(markdown=False, out=out)
    table.header()
    table.add(ROW)
    table.add(Row("b", "1", "x", "y", 1.6, "≤ 1.5x floor", False))
    header, _rule, first, second = out.getvalue().splitlines()
    assert first.index("1.2 ms") == second.index("x") == header.index("figure")
    assert first.endswith("yes") and second.endswith("NO")


def test_seconds_picks_a_readable_unit() -> None:
    assert seconds(2.514) == "2.51 s"
    assert seconds(0.00123) == "1.23 ms"
    assert seconds(0.0000456) == "45.6 µs"
