"""Gunicorn settings shared by both endpoints in bench/webhook.py (so the ratio compares apps, not servers)."""

import os

workers = int(os.environ.get("BENCH_WORKERS", "2"))
worker_class = os.environ.get("BENCH_WORKER_CLASS", "gthread")
threads = int(os.environ.get("BENCH_THREADS", "4"))
keepalive = 30
backlog = 256
accesslog = None
loglevel = "warning"
