"""Parsed `:history` entries kept between refreshes, so each refresh parses only new entries."""

from __future__ import annotations

from collections import deque

from monitoring_dashboard.snapshots import Point

StreamId = tuple[int, int]


def stream_id(text: str) -> StreamId:
    """Order stream IDs (`ms-seq`) numerically."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class HistoryCache:
    """The window of parsed history, oldest first, keyed by stream ID."""

    def __init__(self) -> None:
        self._entries: deque[tuple[StreamId, Point]] = deque()
        self._last_id_text: str | None = None

    @property
    def fetch_after(self) -> str | None:
        """The ID after which entries are new to the cache (None: fetch the whole window)."""
        return self._last_id_text

    def is_ahead_of(self, newest_id: str) -> bool:
        """True when the cache holds entries newer than the stream's newest: it was recreated."""
        return bool(self._entries) and self._entries[-1][0] > stream_id(newest_id)

    def clear(self) -> None:
        self._entries.clear()
        self._last_id_text = None

    def update(
        self, first_in_window: str | None, new: list[tuple[str, Point | None]]
    ) -> list[Point]:
        """Drop entries Redis no longer has in the window, append new ones, return the window."""
        # Entries before the stream's first in-window entry aged out or were trimmed by MAXLEN.
        floor = stream_id(first_in_window) if first_in_window is not None else None
        while self._entries and (floor is None or self._entries[0][0] < floor):
            self._entries.popleft()
        for id_text, point in new:
            key = stream_id(id_text)
            if point is not None and floor is not None and key >= floor:
                self._entries.append((key, point))
            self._last_id_text = id_text
        if floor is None:
            # Nothing is left in the window: next time, read the window afresh.
            self._last_id_text = None
        return [point for _, point in self._entries]
