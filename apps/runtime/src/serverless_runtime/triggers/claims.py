"""Stream mode: a long call keeps its entry, so that STREAM_CLAIM_IDLE cannot hand it to another
consumer while this one is alive (its commit would then be refused, and the call wasted)."""

from __future__ import annotations

import logging
import threading
import time

import redis

from serverless_runtime.storage.store import Store

log = logging.getLogger(__name__)


class ClaimKeeper:
    """Resets the idle time of the entry being called every third of STREAM_CLAIM_IDLE. From a
    thread, through the same client pool: a call in C code or a sleeping handler keeps its claim; a
    stopped or dead process does not, and its entry is claimed by another consumer."""

    def __init__(self, store: Store, claim_idle: float) -> None:
        self._store = store
        self._every = claim_idle / 3
        self._entry: str | None = None
        self._renewed = 0.0
        self._thread: threading.Thread | None = None

    def hold(self, entry_id: str | None) -> None:
        """Keep `entry_id` claimed by this consumer from now on (None: no entry any more)."""
        if self._thread is None and entry_id is not None:
            self._thread = threading.Thread(target=self._run, name="claim-keeper", daemon=True)
            self._thread.start()
        self._entry, self._renewed = entry_id, time.monotonic()

    def _run(self) -> None:
        while True:
            time.sleep(self._every / 2)
            entry = self._entry
            if entry is None or time.monotonic() - self._renewed < self._every:
                continue
            self._renewed = time.monotonic()
            try:
                if not self._store.keep_claim(entry):
                    log.info("stream entry %s was claimed by another consumer meanwhile", entry)
            except redis.RedisError as exc:
                log.debug("could not renew the claim on %s: %s", entry, exc)
