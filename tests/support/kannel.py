"""Real Kannel for tests: bearerbox and smsbox from deploy/kannel.conf on free loopback ports under a temp dir,
fakesmsc as the phone, and tdbot served over HTTP so that smsbox's get-url and dlr-url reach it.

The fake SMSC serves one fakesmsc at a time: each test starts its own and stops it by its pid. Without Kannel the
fixture skips, with the command that installs it; in CI (`CI` set, as .ci/run and CI services set it) it fails.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from gateway import create_app
from gateway.runtime import QUEUES, Runtime
from tests.support.processes import ROOT, STOP_WAIT, free_port, start, stop, wait_for
from tests.support.profiles import NOT_SET
from tests.support.scheduled import BurstWorker

TEMPLATE = ROOT / "deploy" / "kannel.conf"
BEARERBOX, SMSBOX, FAKESMSC = "/usr/sbin/bearerbox", "/usr/sbin/smsbox", "/usr/lib/kannel/test/fakesmsc"
INSTALL = "apt-get update && apt-get install -y kannel kannel-extras"
TOKEN = "kannel-test-token-0123456789"
USERNAME, PASSWORD = "tdbot", "sendsms-test-password"
ADMIN_PASSWORD = "admin-test-password"


def kannel_settings(sendsms_url: str, callback_url: str | None = None) -> dict[str, object]:
    """The app's settings for a Kannel channel at `sendsms_url`."""
    return {
        "TDBOT_KANNEL_TOKEN": TOKEN, "KANNEL_SENDSMS_URL": sendsms_url, "KANNEL_USERNAME": USERNAME,
        "KANNEL_PASSWORD": PASSWORD, "KANNEL_CALLBACK_URL": callback_url,
    }


def work(runtime: Runtime) -> None:
    """What a worker would do now: every queued job, once."""
    BurstWorker([runtime.queue(name) for name in QUEUES], connection=runtime.queue_redis).work(burst=True)


# --- tdbot over HTTP ---------------------------------------------------------------------------------------------


class LiveApp:
    """tdbot served over real HTTP on a free loopback port. The app is swapped per test; the server (and Kannel
    pointing at it) stays for the module. `lose_answers` makes the next MO requests run but answer 503, as if the
    answer was lost on the way back, so that smsbox retries them."""

    def __init__(self) -> None:
        self.app = None
        self.lose_answers = 0
        self.mo_requests: list[str] = []
        self.dlr_requests: list[str] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, self, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def __call__(self, environ: dict, start_response: Callable):
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no app"]
        if environ.get("PATH_INFO") == "/webhooks/kannel/dlr":
            self.dlr_requests.append(environ.get("QUERY_STRING", ""))
        if environ.get("PATH_INFO") == "/webhooks/kannel/mo":
            self.mo_requests.append(environ.get("QUERY_STRING", ""))
            if self.lose_answers > 0:
                self.lose_answers -= 1
                answer = self.app(environ, lambda *_: None)
                list(answer)
                answer.close()
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"answer lost"]
        return self.app(environ, start_response)

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(STOP_WAIT)


# --- bearerbox and smsbox ----------------------------------------------------------------------------------------


def configure(template: str, changes: dict[tuple[str, str], str]) -> str:
    """`template` (a Kannel config) with `key = value` set in the groups named: {(group, key): value}. A group is
    named by its `group =` line, or `smsc = fake` for an smsc group."""
    out, group = [], ""
    for line in template.splitlines():
        setting = re.match(r"\s*([a-z-]+)\s*=\s*(.*)$", line)
        if setting and setting[1] == "group":
            group = setting[2].strip()
        elif setting and setting[1] == "smsc":
            group = f"smsc={setting[2].strip()}"
        if setting and (group, setting[1]) in changes:
            line = f"{setting[1]} = {changes[(group, setting[1])]}"
        out.append(line)
    return "\n".join(out) + "\n"


class Kannel:
    """bearerbox and smsbox as deploy/kannel.conf sets them up, moved to free ports and `directory`, sending MO to
    `app_url`; with a fake SMSC of its own, on a port of its own, for each of `links` (an smsc-id: a carrier's link)."""

    def __init__(self, directory: Path, app_url: str, links: tuple[str, ...] = ()) -> None:
        self.directory, self.app_url = directory, app_url
        self.admin_port, self.box_port, self.sendsms_port, self.smsc_port = (free_port() for _ in range(4))
        self.link_ports = {link: free_port() for link in links}
        self.config = directory / "kannel.conf"
        self.bearerbox: subprocess.Popen | None = None
        self.smsbox: subprocess.Popen | None = None

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    @property
    def access_log(self) -> Path:
        return self.directory / "access.log"

    def write_config(self) -> None:
        template = TEMPLATE.read_text()
        get_url = re.search(r'get-url = "(.*)"', template)[1]
        get_url = re.sub(r"token=[^&]*", f"token={TOKEN}", get_url.replace("http://127.0.0.1:5000", self.app_url))
        d = self.directory
        self.config.write_text(configure(template, {
            ("core", "admin-port"): str(self.admin_port), ("core", "admin-password"): ADMIN_PASSWORD,
            ("core", "smsbox-port"): str(self.box_port), ("core", "log-file"): f'"{d / "bearerbox.log"}"',
            ("core", "access-log"): f'"{self.access_log}"', ("core", "store-location"): f'"{d / "kannel.store"}"',
            ("core", "log-level"): "0", ("smsc=fake", "port"): str(self.smsc_port),
            ("smsbox", "bearerbox-port"): str(self.box_port), ("smsbox", "sendsms-port"): str(self.sendsms_port),
            ("smsbox", "log-file"): f'"{d / "smsbox.log"}"', ("smsbox", "log-level"): "0",
            ("smsbox", "http-queue-delay"): "1", ("sendsms-user", "password"): PASSWORD,
            ("sms-service", "get-url"): f'"{get_url}"',
        }) + "".join(
            f"\ngroup = smsc\nsmsc = fake\nsmsc-id = {link}\nallowed-smsc-id = {link}\nport = {port}\n"
            "connect-allow-ip = 127.0.0.1\n" for link, port in self.link_ports.items()
        ))

    def start(self) -> Kannel:
        self.write_config()
        self.bearerbox = self._spawn(BEARERBOX, "bearerbox")
        wait_for(lambda: self.status() is not None, "bearerbox's admin port")
        self.smsbox = self._spawn(SMSBOX, "smsbox")
        wait_for(self._sendsms_listening, "smsbox's sendsms port")
        return self

    def stop(self) -> None:
        """bearerbox tells smsbox to go before it goes itself; smsbox is stopped by its own pid if it lingers."""
        for process in (self.bearerbox, self.smsbox):
            if process is not None:
                stop(process)

    def status(self) -> str | None:
        try:
            response = requests.get(f"http://127.0.0.1:{self.admin_port}/status.txt",
                                    params={"password": ADMIN_PASSWORD}, timeout=2)
        except requests.ConnectionError:
            return None
        return response.text if response.ok else None

    def phone_connected(self, port: int | None = None) -> bool:
        return f"FAKE:{port or self.smsc_port} (online" in (self.status() or "")

    def _sendsms_listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.sendsms_port)) == 0

    def _spawn(self, binary: str, name: str) -> subprocess.Popen:
        return start([binary, str(self.config)], self.directory / f"{name}.out", stdin=subprocess.DEVNULL)


# --- fakesmsc, the phone -----------------------------------------------------------------------------------------

_GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (text|ucs-2|data|udh) (.*)>\s*$")


class Handset:
    """A long-lived fakesmsc fed through a pipe: texts MO lines in, and reads every MT Kannel hands it (parts of a
    concatenated message joined; those are UCS-2 here, Chinese)."""

    def __init__(self, kannel: Kannel, log_name: str, link: str = "") -> None:
        """A phone on the fake SMSC of `link` (one of the Kannel's links), else on the shipped one."""
        self.kannel = kannel
        self.log = kannel.directory / log_name
        self._lines: list[str] = []
        self._out = open(self.log, "ab")  # noqa: SIM115 (closed in stop)
        port = kannel.link_ports[link] if link else kannel.smsc_port
        self.process = start([FAKESMSC, "-H", "127.0.0.1", "-r", str(port), "-i", "0.1"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_for(lambda: kannel.phone_connected(port), "fakesmsc to connect")

    def text(self, body: str, sender: str = "13800138000", to: str = "10086", kind: str = "text") -> None:
        self.process.stdin.write(f"{sender} {to} {kind} {body}\n".encode())
        self.process.stdin.flush()

    def received(self) -> list[tuple[str, str, str]]:
        """(from, to, text) of every MT so far."""
        messages, parts = [], {}
        for line in list(self._lines):
            got = _GOT.search(line)
            if got is None:
                continue
            sender, to, kind, payload = got.groups()
            if kind == "udh":
                udh, _, data = payload.partition(" data ")
                header = _bytes(udh)
                parts.setdefault(header[3], {})[header[5]] = _bytes(data)
                if len(parts[header[3]]) < header[4]:
                    continue
                whole = parts.pop(header[3])
                messages.append((sender, to, b"".join(whole[n] for n in sorted(whole)).decode("utf-16-be")))
            else:
                messages.append((sender, to, _text(kind, payload)))
        return messages

    def texts(self) -> list[str]:
        return [text for _, _, text in self.received()]

    def stop(self) -> None:
        """fakesmsc leaves cleanly on SIGINT."""
        stop(self.process, signal.SIGINT)
        self._reader.join(STOP_WAIT)
        self._out.close()

    def _read(self) -> None:
        for raw in self.process.stdout:
            self._out.write(raw)
            self._out.flush()
            self._lines.append(raw.decode(errors="replace"))


def _bytes(urlcoded: str) -> bytes:
    return unquote_to_bytes(urlcoded.replace("+", " "))


def _text(kind: str, payload: str) -> str:
    if kind == "text":
        return payload
    return _bytes(payload).decode("utf-16-be" if kind == "ucs-2" else "latin-1")


class BusySendsms:
    """In front of sendsms: answers 503 (as sendsms does when bearerbox cannot take a message) `refuse` times, then
    passes requests through."""

    def __init__(self, sendsms_url: str, refuse: int = 1) -> None:
        self.sendsms_url, self.refuse, self.refused = sendsms_url, refuse, 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/cgi-bin/sendsms"
        self._server = make_server("127.0.0.1", self.port, self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def __call__(self, environ: dict, start_response: Callable):
        if self.refused < self.refuse:
            self.refused += 1
            start_response("503 Service Unavailable", [("Content-Type", "text/html")])
            return [b"Sending failed."]
        answer = requests.get(f"{self.sendsms_url}?{environ.get('QUERY_STRING', '')}", timeout=10)
        start_response(f"{answer.status_code} {answer.reason}", [("Content-Type", "text/html")])
        return [answer.content]

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(STOP_WAIT)


# --- fixtures ----------------------------------------------------------------------------------------------------


def _installed() -> bool:
    return all(os.access(binary, os.X_OK) for binary in (BEARERBOX, SMSBOX, FAKESMSC))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() not in NOT_SET:  # CI=true, or CI=1 as .ci/run sets it
        pytest.fail(f"Kannel is needed in CI: {reason}", pytrace=False)
    pytest.skip(f"{reason}; install it with `{INSTALL}`")


@pytest.fixture(scope="module")
def live() -> Iterator[LiveApp]:
    server = LiveApp()
    yield server
    server.close()


def running_kannel(tmp_path_factory: pytest.TempPathFactory, live: LiveApp, links: tuple[str, ...] = ()
                   ) -> Iterator[Kannel]:
    """A module fixture's Kannel, with a fake SMSC for each of `links` besides the shipped one."""
    if not _installed():
        _unavailable(f"Kannel is not installed ({BEARERBOX}, {SMSBOX}, {FAKESMSC})")
    box = Kannel(tmp_path_factory.mktemp("kannel"), live.url, links)
    try:
        box.start()
    except (OSError, pytest.fail.Exception) as exc:
        box.stop()
        _unavailable(f"Kannel did not start ({exc}); see {box.directory}")
    yield box
    box.stop()


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory, live: LiveApp) -> Iterator[Kannel]:
    yield from running_kannel(tmp_path_factory, live)


@pytest.fixture
def serve(test_config: dict, kannel: Kannel, live: LiveApp) -> Iterator[Callable[..., Flask]]:
    """Put a test app, sending through the real Kannel (settings overridden by keyword), behind the live server."""

    def make(**overrides: object) -> Flask:
        settings = {**test_config, "PUBLIC_BASE_URL": live.url, **kannel_settings(kannel.sendsms_url, live.url)}
        live.app, live.lose_answers = create_app({**settings, **overrides}), 0
        live.mo_requests.clear()
        live.dlr_requests.clear()
        return live.app

    yield make
    live.app = None


@pytest.fixture
def kannel_app(serve: Callable[..., Flask]) -> Flask:
    return serve()


@pytest.fixture
def handset(kannel: Kannel, request: pytest.FixtureRequest) -> Iterator[Handset]:
    phone = Handset(kannel, f"fakesmsc-{request.node.name}.log")
    yield phone
    phone.stop()


@pytest.fixture
def busy_sendsms(kannel: Kannel) -> Iterator[BusySendsms]:
    proxy = BusySendsms(kannel.sendsms_url)
    yield proxy
    proxy.close()
