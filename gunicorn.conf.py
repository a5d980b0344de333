"""Production gunicorn settings: `gunicorn wsgi:app` (the Procfile's web) reads them from this directory.

Without a config gunicorn runs one synchronous worker: one request at a time, and no keep-alive for the carrier's
or Twilio's connections. Worker class, threads and keep-alive are the ones bench/webhook.py measures. Binds to
$PORT when the platform sets it.

/metrics adds up every worker: prometheus-client's multiprocess mode, in `PROMETHEUS_MULTIPROC_DIR` (a directory of
this gunicorn's own unless set), emptied when gunicorn starts; a worker that exits is marked dead. Logs are tdbot's
JSON lines, gunicorn's own and its access log included (numbers in URLs masked).
"""

import glob
import os
import tempfile

workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
worker_class = "gthread"
threads = int(os.environ.get("TDBOT_WEB_THREADS") or 4)  # a step waits on Redis twice: other requests use the CPU
keepalive = 30
timeout = 30
accesslog = "-"

# Set here, in the master, before any worker imports prometheus_client: it picks its mode on import.
metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"tdbot-metrics-{os.getpid()}")
)


def on_starting(server) -> None:
    """Counts a previous gunicorn left would be added to this one's."""
    os.makedirs(metrics_dir, exist_ok=True)
    for stale in glob.glob(os.path.join(metrics_dir, "*.db")):
        os.remove(stale)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _json_handler(stream: str) -> dict:
    return {"class": "logging.StreamHandler", "formatter": "json", "stream": f"ext://sys.{stream}"}


logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "gateway.logs.JsonFormatter"}},
    "handlers": {"stderr": _json_handler("stderr"), "stdout": _json_handler("stdout")},
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
    },
}
