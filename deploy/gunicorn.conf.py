"""gunicorn settings for the bridge's web processes: ``gunicorn -c deploy/gunicorn.conf.py
'bridge.app:from_environment()'`` (the config file comes from $BRIDGE_CONFIG)."""

import multiprocessing
import os

bind = os.environ.get("BRIDGE_BIND", "0.0.0.0:8000")
# Intake is I/O-light and short: 2 per core (capped) keeps latency low under bursts.
workers = int(os.environ.get("BRIDGE_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 12)))
# Threaded workers: a slow client (a phone on a bad network, or slowloris) holds one
# thread while its body arrives, not the whole process; server.body_timeout cuts it off.
worker_class = "gthread"
threads = int(os.environ.get("BRIDGE_THREADS", 16))
timeout = 30  # a request that takes longer is stuck: the worker is replaced
graceful_timeout = 20  # SIGTERM lets requests in flight finish
keepalive = 5
max_requests = 5000  # recycle workers now and then
max_requests_jitter = 500
limit_request_line = 8190
limit_request_fields = 100
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Believe X-Forwarded-* only from the reverse proxy in front (set its address here).
forwarded_allow_ips = os.environ.get("BRIDGE_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("BRIDGE_LOG_LEVEL", "info").lower()
access_log_format = (
    '{"time": "%(t)s", "remote": "%(h)s", "request": "%(r)s", "status": %(s)s, '
    '"bytes": %(B)s, "duration_us": %(D)s, "request_id": "%({x-request-id}o)s"}'
)


def child_exit(server, worker):
    """Drop a dead worker's live metrics files (prometheus-client multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
