"""Production gunicorn settings: `gunicorn wsgi:app` (the Procfile's web) reads them from this directory.

Without a config gunicorn runs one synchronous worker: one request at a time, and no keep-alive for the carrier's
or Twilio's connections. Worker class, threads and keep-alive are the ones bench/webhook.py measures. Binds to
$PORT when the platform sets it.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
worker_class = "gthread"
threads = int(os.environ.get("TDBOT_WEB_THREADS") or 4)  # a step waits on Redis twice: other requests use the CPU
keepalive = 30
timeout = 30
accesslog = "-"
