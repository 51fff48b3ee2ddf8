"""The Live and Functions pages' time-range choice: 15 min, 1 h, 6 h within the kept history."""

from __future__ import annotations

from typing import Any

# (minutes, label) offered when HISTORY_MINUTES keeps that much.
CHOICES = ((15, "15 min"), (60, "1 h"), (360, "6 h"))
DEFAULT_MINUTES = 60


def options(history_minutes: float) -> list[dict[str, Any]]:
    """The choices within the kept history; the whole history too when it is none of them."""
    kept = [(minutes, label) for minutes, label in CHOICES if minutes <= history_minutes]
    offered: list[dict[str, Any]] = [{"label": label, "value": minutes} for minutes, label in kept]
    if not kept or kept[-1][0] < history_minutes < CHOICES[-1][0]:
        hours = history_minutes >= 60 and history_minutes % 60 == 0
        label = f"{int(history_minutes // 60)} h" if hours else f"{history_minutes:g} min"
        offered.append({"label": f"{label} (all)", "value": history_minutes})
    return offered


def default(history_minutes: float) -> float:
    """An hour when that much is kept, else the whole history."""
    return min(DEFAULT_MINUTES, history_minutes)


def chosen_minutes(value: Any, history_minutes: float) -> float:
    """The browser's choice, trusted only as a positive number within the kept history."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return default(history_minutes)
    return min(float(value), history_minutes)
