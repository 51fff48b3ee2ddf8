"""Fixtures of the image tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.images.podman import Container


@pytest.fixture
def containers(tmp_path: Path) -> Iterator[Callable[[list[str]], Container]]:
    started: list[Container] = []

    def start(args: list[str]) -> Container:
        container = Container(args, tmp_path / f"container-{len(started)}.log")
        started.append(container)
        return container

    yield start
    for container in started:
        container.stop()
