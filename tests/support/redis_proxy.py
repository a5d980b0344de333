"""A TCP proxy in front of Redis that can hold a process still right after a given command went through: the test
then kills it there, at a chosen point between two Redis calls, which no sleep or signal timing can promise. It also
counts what Redis sent back, for tests of how much a request reads."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlparse, urlunparse

CHUNK = 65536
T = TypeVar("T")


class FreezingProxy:
    """Forwards every connection to Redis. Once armed with a command pattern, the first request containing it goes
    through and its reply comes back, and then nothing more from any client reaches Redis until `thaw`; replies
    already on their way still arrive."""

    def __init__(self, redis_url: str) -> None:
        parts = urlparse(redis_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._url = parts
        self._server = socket.create_server(("127.0.0.1", 0))
        self._pattern = b""
        self._countdown = 0  # with no pattern: the request, counting from 1, after which to freeze
        self._counting = threading.Lock()
        self.frozen = threading.Event()
        self._open = threading.Event()
        self._open.set()
        self._sockets: list[socket.socket] = []
        self._refusing = False
        self._answering: socket.socket | None = None  # the connection whose request froze the proxy, until answered
        self._counting = threading.Lock()
        self.replied = 0  # bytes Redis sent back so far, to every client
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._server.getsockname()
        return urlunparse(self._url._replace(netloc=f"{host}:{port}"))

    def freeze_after(self, pattern: bytes) -> None:
        self.frozen.clear()
        self._pattern = pattern

    def freeze_after_request(self, n: int) -> None:
        """Freeze right after the `n`th request from now (a pipeline sent at once counts as one)."""
        self.frozen.clear()
        self._countdown = n

    def thaw(self) -> None:
        self._pattern = b""
        self._countdown = 0
        self._open.set()

    def cut(self) -> None:
        """Drop every connection open now and refuse new ones until `mend`: to its clients, Redis went away (a
        request held by `freeze_after` fails there)."""
        self._refusing = True
        for sock in self._sockets:
            _shut(sock)
        self._sockets = []

    def mend(self) -> None:
        self._refusing = False
        self.thaw()

    def cut_after(self, pattern: bytes | int, ask: Callable[[], T], timeout: float = 30.0) -> T:
        """What `ask()` (run in a thread of its own) returns when Redis goes away right after the first request
        containing `pattern` (or the `pattern`th request, when a number) went through; Redis is back once it has
        returned."""
        if isinstance(pattern, int):
            self.freeze_after_request(pattern)
        else:
            self.freeze_after(pattern)
        answer: list[T] = []
        asking = threading.Thread(target=lambda: answer.append(ask()), daemon=True)
        asking.start()
        if not self.frozen.wait(timeout):
            raise AssertionError(f"no request with {pattern!r} within {timeout} s")
        self.cut()
        asking.join(timeout)
        self.mend()
        if not answer:
            raise AssertionError(f"no answer within {timeout} s of Redis going away")
        return answer[0]

    def close(self) -> None:
        self.thaw()
        for sock in [self._server, *self._sockets]:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._refusing:
                _shut(client)
                client.close()
                continue
            upstream = socket.create_connection(self.upstream)
            self._sockets += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        while True:
            try:
                data = client.recv(CHUNK)
                if not data:
                    break
                if self._open.is_set() and self._freezes_after(data):
                    self._open.clear()  # this request goes through; everything after it waits
                    self._answering = upstream  # frozen once its reply is through: Redis has run it
                else:
                    self._open.wait()
                upstream.sendall(data)
            except OSError:
                break
        _shut(upstream)

    def _freezes_after(self, data: bytes) -> bool:
        if self._pattern:
            return self._pattern in data
        with self._counting:
            if not self._countdown:
                return False
            self._countdown -= 1
            return self._countdown == 0

    def _replies(self, upstream: socket.socket, client: socket.socket) -> None:
        while True:
            try:
                data = upstream.recv(CHUNK)
                if not data:
                    break
                with self._counting:
                    self.replied += len(data)
                client.sendall(data)
                if self._answering is upstream:
                    self._answering = None
                    self.frozen.set()
            except OSError:
                break
        _shut(client)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)
