"""A TCP proxy in front of Redis that can drop a connection at a chosen moment: after Redis has run a command whose
request holds some bytes, before its answer reaches the client. The client sees a dropped connection for a command
that did happen, as when a network link or a Redis failover cuts in between.
"""

from __future__ import annotations

import select
import socket
import threading
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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_after(self, marker: bytes, skip: int = 0) -> None:
        """After the `skip` next requests holding `marker`, the next one runs in Redis and its connection is cut
        before the answer comes back."""
        with self._lock:
            self._drops.append([marker, skip])

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
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

    def _relay(self, client: socket.socket) -> None:
        server = socket.create_connection(self.upstream)
        cut = False
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, server], [], [], 0.5)
                if client in ready:
                    request = client.recv(65536)
                    if not request:
                        return
                    server.sendall(request)
                    cut = self._take(request)
                if server in ready:
                    answer = server.recv(65536)
                    if not answer:
                        return
                    if cut:
                        return  # Redis ran it; the client never hears so
                    client.sendall(answer)
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
