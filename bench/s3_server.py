"""Starts the integration suite's S3 server (Ceph RADOS Gateway on loopback,
tests/integration/s3server.py) for bench/s3.sh, and stops it on SIGTERM,
SIGINT (unless it started ignored, as in a script's background job) or
SIGHUP, or when the process that started this one dies.

    /usr/bin/python3 bench/s3_server.py ENV_FILE BUCKET [BUCKET...]

Creates the buckets, then writes ENV_FILE (atomically: the script polls for
it) with shell assignments:

    S3_ENDPOINT=http://127.0.0.1:PORT  S3_ACCESS_KEY=...  S3_SECRET_KEY=...
    S3_REGION=us-east-1  S3_START_SECONDS=1.9
    S3_PIDS='radosgw=PID ceph-osd=PID ceph-mon=PID'  S3_CEPH_CONF=.../ceph.conf

and waits. The daemons' directory is made under $TMPDIR. S3_CEPH_CONF is
for radosgw-admin: a deleted object's data stays in the memstore until RGW's
garbage collector runs, by default 2 h later, so the benchmark runs
`radosgw-admin gc process --include-all` after its deletes. Exits 0 after a
clean stop, 1 (with the gateway's diagnostics on stderr) when the server did
not start. Benchmark-only; run it with Debian's python3 (boto3 creates the
buckets).
"""

import ctypes
import os
import shlex
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
from s3server import S3Server, S3StartError  # noqa: E402

# Sized for the benchmark: a 1 GiB object, the parts of the next upload, and
# a dump, while deleted objects' space is reused.
MEMSTORE_BYTES = 6 << 30


def main(argv):
    if len(argv) < 3:
        print("usage: s3_server.py ENV_FILE BUCKET [BUCKET...]", file=sys.stderr)
        return 64
    env_file, buckets = argv[1], argv[2:]

    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # A script's background job starts with SIGINT ignored: then Ctrl-C
        # leaves the gateway to the script's cleanup (SIGTERM), so that the
        # clients it interrupts can still abort their uploads.
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, on_signal)
    # The script that started us may be SIGKILLed: then stop as on SIGTERM.
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        return 1

    server = S3Server(memstore_bytes=MEMSTORE_BYTES)
    try:
        server.start()
        for b in buckets:
            server.make_bucket(b)
    except S3StartError as e:
        print(e, file=sys.stderr)
        server.stop()
        return 1
    except BaseException:
        server.stop()
        raise
    try:
        values = {
            "S3_ENDPOINT": server.endpoint,
            "S3_ACCESS_KEY": server.access_key,
            "S3_SECRET_KEY": server.secret_key,
            "S3_REGION": server.region,
            "S3_START_SECONDS": f"{server.start_seconds:.1f}",
            "S3_PIDS": " ".join(f"{n}={p}" for n, p in server.pids().items()),
            "S3_CEPH_CONF": server.conf,
        }
        tmp = env_file + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            for k, v in values.items():
                f.write(f"{k}={shlex.quote(v)}\n")
        os.rename(tmp, env_file)
        while not stop.wait(0.5):
            if os.getppid() != parent:
                break
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
