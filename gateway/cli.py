"""`tdbot`: run the whole system, chat as a phone, import subscribers, read the console outbox."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import click
import requests
from twilio.request_validator import RequestValidator

from dialogs.imports import merge
from gateway import config as settings
from gateway import create_app, db, demo, importer, validation
from gateway.bootstrap import bootstrap
from gateway.keys import OUTBOX

RUNTIME_FILE = "runtime.json"


@click.group()
def main() -> None:
    """tdbot: cancel monthly packages by SMS."""


def _data_dir() -> Path:
    return Path(os.environ.get("TDBOT_DATA_DIR", ".tdbot"))


def _runtime_info() -> dict:
    path = _data_dir() / RUNTIME_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _config() -> dict:
    """Environment first; else what a running `tdbot run` left behind, so other commands reach the same Redis."""
    config = settings.from_env()
    info = _runtime_info()
    for name in ("REDIS_URL", "TWILIO_AUTH_TOKEN"):
        if not config.get(name) and info.get(name):
            config[name] = info[name]
    return config


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--workers", default=1, show_default=True, help="RQ worker processes to start")
@click.option("--demo/--no-demo", "with_demo", default=True, show_default=True, help="seed demo subscribers")
def run(host: str, port: int, workers: int, with_demo: bool) -> None:
    """Start web, worker(s) and scheduler; embedded Redis when REDIS_URL is unset."""
    config = settings.from_env()
    redis = db.connect(config.get("REDIS_URL"), str(_data_dir()))
    config["REDIS_URL"] = db.url_of(redis)
    config["TWILIO_AUTH_TOKEN"] = config.get("TWILIO_AUTH_TOKEN") or secrets.token_hex(16)
    config["TDBOT_API_TOKEN"] = config.get("TDBOT_API_TOKEN") or secrets.token_hex(16)
    os.environ.update({k: str(v) for k, v in config.items() if v is not None})
    app = create_app(config)
    if with_demo:
        demo.seed(app.extensions["tdbot"].store, date.today())
    base = f"http://{host}:{port}"
    _write_runtime({**config, "BASE_URL": base})
    children = [subprocess.Popen([sys.executable, "-m", "worker"]) for _ in range(workers)]
    _banner(config, base, with_demo)
    try:
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=10)


def _write_runtime(info: dict) -> None:
    _data_dir().mkdir(parents=True, exist_ok=True)
    keep = ("REDIS_URL", "TWILIO_AUTH_TOKEN", "TDBOT_API_TOKEN", "BASE_URL", "PUBLIC_BASE_URL")
    path = _data_dir() / RUNTIME_FILE
    path.write_text(json.dumps({k: info.get(k) for k in keep}))
    path.chmod(0o600)


def _banner(config: dict, base: str, with_demo: bool) -> None:
    public = config.get("PUBLIC_BASE_URL") or base
    click.echo(f"tdbot is up at {base}  (Redis: {config['REDIS_URL']})")
    click.echo(f"  Twilio: set the number's Messaging webhook to {public}/webhooks/twilio/sms")
    click.echo(f"          and status callbacks to {public}/webhooks/twilio/status")
    click.echo(f"  API token: {config['TDBOT_API_TOKEN']}")
    if with_demo:
        click.echo(f"  Try it:  tdbot chat {demo.DEMO_NUMBERS[0]}   (then TD, 1, Y, and the code)")


@main.command()
@click.argument("msisdn")
@click.option("--url", default=None, help="the running tdbot (default: the one `tdbot run` started)")
def chat(msisdn: str, url: str | None) -> None:
    """A terminal phone: type messages, see replies and every message sent to MSISDN."""
    number = validation.msisdn(msisdn)
    config = _config()
    base = url or _runtime_info().get("BASE_URL") or "http://127.0.0.1:5000"
    outbox = _Outbox(bootstrap(config), number)
    click.echo(f"Texting {base} as {number}. Ctrl-D to hang up.")
    for count, line in enumerate(_lines(), 1):
        reply = _post(base, str(config.get("TWILIO_AUTH_TOKEN") or ""), number, line, f"SMchat{time.time_ns()}{count}")
        if reply:
            click.echo(f"< {reply}")
        for text in outbox.wait_for_new():
            click.echo(f"<< {text}")


def _lines():
    while True:
        try:
            line = input("> ")
        except EOFError:
            return
        if line.strip():
            yield line


def _post(base: str, token: str, number: str, text: str, sid: str) -> str:
    from xml.etree import ElementTree

    url = f"{base.rstrip('/')}/webhooks/twilio/sms"
    form = {"From": number, "To": "10086", "Body": text, "MessageSid": sid}
    headers = {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}
    response = requests.post(url, data=form, headers=headers, timeout=15)
    if response.status_code != 200:
        return f"(HTTP {response.status_code})"
    return "\n".join(m.text or "" for m in ElementTree.fromstring(response.content).iter("Message"))


class _Outbox:
    """New console-outbox entries for one number, waiting briefly for the worker to send them."""

    def __init__(self, runtime, number: str) -> None:
        self.redis, self.key, self.number = runtime.redis, runtime.keys.shared(OUTBOX), number
        self.seen = self.redis.llen(self.key)

    def wait_for_new(self, seconds: float = 2.0) -> list[str]:
        deadline, found = time.monotonic() + seconds, []
        while time.monotonic() < deadline and not found:
            time.sleep(0.2)
            found = self._new()
        return found

    def _new(self) -> list[str]:
        entries = self.redis.lrange(self.key, self.seen, -1)
        self.seen += len(entries)
        return [e["text"] for e in map(json.loads, entries) if e["to"] == self.number]


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(path: Path) -> None:
    """Upsert subscribers from a CSV or JSON-lines file; nothing is written unless every line is valid."""
    try:
        incoming = list(importer.read(path))
    except validation.Invalid as exc:
        raise click.ClickException(f"{path}: {exc}; nothing imported") from None
    store = bootstrap(_config()).store
    with click.progressbar(incoming, label=f"importing {len(incoming)} subscribers") as bar:
        for subscriber in bar:
            store.update_subscriber(subscriber.msisdn, lambda existing, new=subscriber: merge(existing, new))
            store.index_subscriber(subscriber.msisdn)
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
        click.echo(f"{stamp} → {entry['to']}: {entry['text']}")


@main.command()
def worker() -> None:
    """Run an RQ worker (same as `python worker.py`)."""
    from worker import main as work

    work()
