"""The result table: one row per benchmark, as fixed-width text or Markdown."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

COLUMNS = ("benchmark", "samples", "figure", "baseline", "ratio", "budget", "holds")
WIDTHS = (52, 11, 27, 24, 9, 22, 5)


@dataclass(frozen=True)
class Row:
    """One benchmark's result next to the baseline measured in the same run."""

    name: str
    samples: str
    figure: str
    baseline: str
    ratio: float | None
    budget: str
    holds: bool | None

    def cells(self) -> tuple[str, ...]:
        """The row as the table's text cells."""
        ratio = "—" if self.ratio is None else _ratio(self.ratio)
        holds = "—" if self.holds is None else ("yes" if self.holds else "NO")
        return (self.name, self.samples, self.figure, self.baseline, ratio, self.budget, holds)


class Table:
    """Prints the header once, then each row as soon as its benchmark finishes."""

    def __init__(self, markdown: bool, out: TextIO = sys.stdout) -> None:
        self.markdown = markdown
        self.out = out
        self.rows: list[Row] = []

    def header(self) -> None:
        """Print the column names."""
        if self.markdown:
            self._line("| " + " | ".join(COLUMNS) + " |")
            self._line("|" + "|".join("---" for _ in COLUMNS) + "|")
        else:
            self._line(_fixed(COLUMNS))
            self._line("  ".join("-" * width for width in WIDTHS))

    def add(self, row: Row) -> None:
        """Print one row."""
        self.rows.append(row)
        if self.markdown:
            self._line("| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |")
        else:
            self._line(_fixed(row.cells()))

    def _line(self, text: str) -> None:
        self.out.write(text.rstrip() + "\n")
        self.out.flush()


def _fixed(cells: tuple[str, ...]) -> str:
    # A cell longer than its column widens that row rather than losing text.
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, WIDTHS, strict=True))


def _ratio(value: float) -> str:
    return f"{value:.0f}x" if value >= 1000 else f"{value:.3g}x"


def seconds(value: float) -> str:
    """A duration with a unit that keeps three significant digits."""
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def megabytes(value: float) -> str:
    """A size in MB (10^6 bytes)."""
    return f"{value / 1e6:.1f} MB"


def rate(value: float) -> str:
    """Events per second."""
    return f"{value:,.0f}/s"
