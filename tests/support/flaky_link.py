"""A TCP proxy in front of Redis that can drop a connection at a chosen moment: after Redis has run a command whose
request holds some bytes, before its answer reaches the client. The client sees a dropped connection for a command
that did happen, as when a network link or a Redis failover cuts in between.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse


class FlakyLink:
    def __init__(self, redis_url: str) -> None:
        parts = urlparse(redis_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}{parts.path}"
        self._drops: list[list] = []  # [marker, requests holding it still to let through]: cut after the next one
        self.dropped = 0
        self._outage: tuple[bytes, float, int] | None = None  # after the answer to a request holding this: down so long
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_after(self, marker: bytes, skip: int = 0) -> None:
        """After the `skip` next requests holding `marker`, the next one runs in Redis and its connection is cut
        before the answer comes back."""
        with self._lock:
            self._drops.append([marker, skip])

    def outage_after(self, marker: bytes, seconds: float, skip: int = 0) -> None:
        """Once the answer to the request holding `marker` after the `skip` next ones is through, cut every connection
        and refuse new ones for `seconds`: Redis restarting (with its data kept) right after that command."""
        with self._lock:
            self._outage = (marker, seconds, skip)

    def up(self) -> bool:
        """Taking connections (no outage under way)."""
        return time.monotonic() >= self._down_until

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._down_until:
                client.close()
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _take(self, request: bytes) -> bool:
        with self._lock:
            for i, (marker, skip) in enumerate(self._drops):
                if marker not in request:
                    continue
                if skip:
                    self._drops[i][1] -= 1
                    return False
                del self._drops[i]
                self.dropped += 1
                return True
        return False

    def _outage_for(self, request: bytes) -> float:
        """How long Redis goes down once this request is answered (0: it stays up)."""
        with self._lock:
            if self._outage is None or self._outage[0] not in request:
                return 0.0
            marker, seconds, skip = self._outage
            self._outage = (marker, seconds, skip - 1) if skip else None
            return 0.0 if skip else seconds

    def _relay(self, client: socket.socket) -> None:
        server = socket.create_connection(self.upstream)
        cut, outage = False, 0.0
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, server], [], [], 0.5)
                if client in ready:
                    request = client.recv(65536)
                    if not request:
                        return
                    server.sendall(request)
                    cut = self._take(request)
                    outage = self._outage_for(request) or outage
                if server in ready:
                    answer = server.recv(65536)
                    if not answer:
                        return
                    if cut:
                        return  # Redis ran it; the client never hears so
                    client.sendall(answer)
                    if outage:
                        self._down_until = time.monotonic() + outage
                        return
                if time.monotonic() < self._down_until:
                    return
        except OSError:
            return
        finally:
            client.close()
            server.close()


@contextmanager
def flaky_link(redis_url: str) -> Iterator[FlakyLink]:
    link = FlakyLink(redis_url)
    try:
        yield link
    finally:
        link.close()
