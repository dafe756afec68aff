#!/usr/bin/env python3
"""Writes N complete backup sets of one series directly into a file://
storage directory, as sauve would leave them: NAME/SETID/postgres/app.dump.zst
(a small object) and NAME/SETID/manifest.json (format 1, see the top comment
of runner/src/manifest/manifest.c). Fast, for benchmarks of list and prune.

usage: gen_sets.py STORAGE_DIR COUNT [--name NAME] [--every SECONDS] [--end UNIX]
Sets are taken every SECONDS (default 6 h) going back from END (default now).
"""
import argparse
import hashlib
import json
import os
import time


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def set_id(t):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def manifest(name, sid, t, data):
    return {
        "format": 1, "id": sid, "name": name, "reason": "backup", "note": None,
        "status": "ok", "started_at": iso(t), "finished_at": iso(t + 10),
        "duration_seconds": 10.0, "sauve_version": "0.1.0", "hostname": "bench",
        "totals": {"bytes_in": 10 * len(data), "bytes_out": len(data), "artifacts": 1, "failed": 0},
        "artifacts": [{
            "kind": "postgres", "name": "app", "key": "postgres/app.dump.zst",
            "format": "pg_dump-custom", "compression": "zstd", "status": "ok", "error": None,
            "bytes_in": 10 * len(data), "bytes_out": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "duration_seconds": 9.5,
            "server_version": "15.18", "tool": "pg_dump",
            "tool_version": "pg_dump (PostgreSQL) 15.18", "endpoint": "db:5432 user app",
            "encryption": None,
        }],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("storage")
    ap.add_argument("count", type=int)
    ap.add_argument("--name", default="default")
    ap.add_argument("--every", type=int, default=6 * 3600)
    ap.add_argument("--end", type=int, default=int(time.time()) - 60)
    a = ap.parse_args()
    for i in range(a.count):
        t = a.end - i * a.every
        sid = set_id(t)
        d = os.path.join(a.storage, a.name, sid)
        os.makedirs(os.path.join(d, "postgres"), exist_ok=True)
        data = f"dump of {sid}\n".encode()
        with open(os.path.join(d, "postgres", "app.dump.zst"), "wb") as f:
            f.write(data)
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump(manifest(a.name, sid, t, data), f, indent=2)
        os.utime(os.path.join(d, "postgres", "app.dump.zst"), (t + 9, t + 9))
        os.utime(os.path.join(d, "manifest.json"), (t + 10, t + 10))


if __name__ == "__main__":
    main()
