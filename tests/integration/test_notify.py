"""Alerting: what the Pushgateway, the webhook and the healthcheck URL
receive at the end of a backup, and that a notifier that fails, hangs or
refuses never hides the backup's own result.

The receivers are tiny HTTP servers of this file (http.server in a thread on
127.0.0.1, port 0) that record every request: method, path, headers, body."""

import json
import os
import re
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pgserver import free_port
from sauvecli import committed_sets


# ---- receivers ----------------------------------------------------------------

class Receiver:
    """Records every request; answers `status` (200 by default) with `answer`.
    url(path) is the URL of path on this receiver."""

    def __init__(self, status=200, answer=b"OK"):
        self.requests = []
        self.status = status
        self.answer = answer
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                rec.requests.append({
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                })
                self.send_response(rec.status)
                self.send_header("Content-Length", str(len(rec.answer)))
                self.end_headers()
                self.wfile.write(rec.answer)

            do_GET = do_POST = do_PUT = do_DELETE = _record

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Hanger:
    """Accepts connections and never answers (a hung receiver)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.closing = True
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def hanger():
    h = Hanger()
    yield h
    h.close()


# ---- helpers ------------------------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse_metrics(text):
    """Text exposition format -> ({(name, labels): value}, {name: help}, {name: type})."""
    samples, helps, types = {}, {}, {}
    assert text.endswith("\n"), repr(text[-50:])
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, help_ = line[7:].split(" ", 1)
            assert name not in helps, f"two HELP lines for {name}"
            helps[name] = help_
        elif line.startswith("# TYPE "):
            name, typ = line[7:].split(" ", 1)
            assert name not in types, f"two TYPE lines for {name}"
            types[name] = typ
        else:
            m = SAMPLE_RE.match(line)
            assert m, f"not a sample line: {line!r}"
            labels = m.group(2) or ""
            samples[(m.group(1), labels)] = float(m.group(3))
    for name, _labels in samples:
        assert name in helps and types.get(name) == "gauge", f"{name} without HELP/TYPE gauge"
    return samples, helps, types


def value(samples, name, labels=""):
    assert (name, labels) in samples, f"no sample {name}{labels} in {sorted(samples)}"
    return samples[(name, labels)]


def names(samples):
    return {n for n, _l in samples}


def wrong_password_env(db):
    return {"SAUVE_PG_DATABASES": db, "PGUSER": "app",
            "PGPASSWORD": "wrong-Pw-" + secrets.token_hex(8)}


def token():
    """A secret-looking path component, as in Slack URLs and healthcheck UUIDs."""
    return "tok" + secrets.token_hex(12)


def warnings(result):
    return [l for l in result.lines if l and str(l.get("level", "")).lower().startswith("warn")]


# ---- Pushgateway --------------------------------------------------------------

def test_success_pushes_metrics_consistent_with_the_manifest(pg, sauve, dbs, storage, receiver, small_template):
    db = dbs.clone(small_template, "pgw")
    env = {"SAUVE_PG_DATABASES": db, "SAUVE_PUSHGATEWAY_URL": receiver.url("/pgw/")}
    t0 = time.time()
    r = sauve.run("backup", env=env)
    t1 = time.time()
    assert r.code == 0, r.describe()
    (req,) = receiver.requests
    assert req["method"] == "PUT", req
    assert req["path"] == "/pgw/metrics/job/sauve/name/default", req
    assert req["headers"]["content-type"].startswith("text/plain; version=0.0.4"), req["headers"]
    samples, helps, _ = parse_metrics(req["body"])
    assert names(samples) == {
        "sauve_last_run_timestamp_seconds", "sauve_last_success_timestamp_seconds",
        "sauve_run_duration_seconds", "sauve_run_status", "sauve_source_bytes", "sauve_sets_total"}, samples
    assert all(helps.values())
    last_run = value(samples, "sauve_last_run_timestamp_seconds")
    assert t0 - 1 <= last_run <= t1 + 1
    assert value(samples, "sauve_last_success_timestamp_seconds") == last_run
    assert 0 < value(samples, "sauve_run_duration_seconds") <= t1 - t0 + 1
    assert value(samples, "sauve_run_status") == 0
    assert value(samples, "sauve_sets_total") == 1

    (_d, m), = committed_sets(storage)
    per_source = {f'{{source="{a["kind"]}:{a["name"]}"}}': a["bytes_out"] for a in m["artifacts"]}
    assert set(per_source) == {f'{{source="postgres:{db}"}}', '{source="postgres:globals"}'}
    pushed = {labels: v for (n, labels), v in samples.items() if n == "sauve_source_bytes"}
    assert pushed == per_source
    assert all(v > 0 for v in pushed.values())
    print(req["body"])

    # A second set: the count follows.
    r = sauve.run("backup", env=env)
    assert r.code == 0, r.describe()
    samples, _, _ = parse_metrics(receiver.requests[-1]["body"])
    assert value(samples, "sauve_sets_total") == 2

    # A third, and prune keeps one: the count is what is left, not what was.
    r = sauve.run("backup", env=dict(env, SAUVE_KEEP_LAST="1"))
    assert r.code == 0, r.describe()
    samples, _, _ = parse_metrics(receiver.requests[-1]["body"])
    assert value(samples, "sauve_sets_total") == len(committed_sets(storage)) == 1

    # Without prune the count comes from a listing of its own.
    r = sauve.run("backup", env=dict(env, SAUVE_PRUNE="false"))
    assert r.code == 0, r.describe()
    samples, _, _ = parse_metrics(receiver.requests[-1]["body"])
    assert value(samples, "sauve_sets_total") == len(committed_sets(storage)) == 2


def test_failure_pushes_status_with_post_and_no_success_time(pg, sauve, dbs, storage, receiver):
    db = dbs.empty("pgwfail")
    r = sauve.run("backup", env={**wrong_password_env(db),
                                 "SAUVE_PUSHGATEWAY_URL": receiver.url("/pgw")})
    assert r.code == 75, r.describe()
    (req,) = receiver.requests
    # POST replaces only the metrics pushed: the group keeps the last success time.
    assert req["method"] == "POST", req
    assert req["path"] == "/pgw/metrics/job/sauve/name/default"
    samples, _, _ = parse_metrics(req["body"])
    assert value(samples, "sauve_run_status") == 75
    assert names(samples) == {"sauve_last_run_timestamp_seconds", "sauve_run_duration_seconds",
                              "sauve_run_status"}, samples
    print(req["body"])


def test_series_name_is_path_escaped(pg, sauve, dbs, receiver):
    db = dbs.empty("pgwname")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_NAME": "prod db",
                                 "SAUVE_PUSHGATEWAY_URL": receiver.url("/")})
    assert r.code == 0, r.describe()
    assert receiver.requests[0]["path"] == "/metrics/job/sauve/name/prod%20db"


# ---- webhook ------------------------------------------------------------------

def test_webhook_on_failure_names_the_cause_and_the_source(pg, sauve, dbs, receiver, workdir):
    db = dbs.empty("hookfail")
    secret = token()
    # Given as a mounted secret file, as a Slack URL would be.
    url_file = os.path.join(workdir, "notify-url")
    with open(url_file, "w") as f:
        f.write(receiver.url(f"/services/T0/B0/{secret}") + "\n")
    r = sauve.run("backup", env={**wrong_password_env(db), "SAUVE_NOTIFY_URL_FILE": url_file})
    assert r.code == 75, r.describe()
    (req,) = receiver.requests
    assert req["method"] == "POST" and req["path"] == f"/services/T0/B0/{secret}", req
    assert req["headers"]["content-type"] == "application/json"
    body = json.loads(req["body"])
    print(json.dumps(body, indent=2))
    assert body["text"] == body["content"]
    assert "\n" not in body["text"] and len(body["content"]) <= 2000
    assert body["text"].startswith(":x: sauve backup of default failed on ")
    assert "exit 75" in body["text"]
    assert "cannot connect to postgres at 127.0.0.1" in body["text"]
    assert "password authentication failed" in body["text"]
    assert body["name"] == "default" and body["set"] is None
    assert body["status"] == "failed" and body["exit_code"] == 75
    assert body["hostname"] == socket.gethostname()
    assert body["bytes_stored"] == 0
    assert isinstance(body["duration_seconds"], (int, float)) and body["duration_seconds"] >= 0
    (failed,) = body["failed_sources"]
    assert failed["source"] == "postgres"
    assert "password authentication failed" in failed["error"]
    assert secret not in r.all_output()


def test_webhook_names_a_failed_database(pg, sauve, dbs, receiver):
    good = dbs.empty("hookgood")
    missing = "missing_" + secrets.token_hex(3)
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": f"{good},{missing}",
                                 "SAUVE_NOTIFY_URL": receiver.url("/hook")})
    assert r.code in (1, 2, 78), r.describe()
    (req,) = receiver.requests
    body = json.loads(req["body"])
    assert body["exit_code"] == r.code
    assert body["status"] == ("partial" if r.code == 2 else "failed")
    sources = {f["source"]: f["error"] for f in body["failed_sources"]}
    assert any(missing in s or missing in e for s, e in sources.items()), body
    assert missing in body["text"], body["text"]


def test_webhook_not_called_on_success_by_default(pg, sauve, dbs, receiver):
    db = dbs.empty("hookok")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_NOTIFY_URL": receiver.url("/hook")})
    assert r.code == 0, r.describe()
    assert receiver.requests == []


def test_webhook_on_success_with_notify_on_always(pg, sauve, dbs, storage, receiver):
    db = dbs.empty("hookalways")
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_NOTIFY_URL": receiver.url("/hook"),
                                 "SAUVE_NOTIFY_ON": "always"})
    assert r.code == 0, r.describe()
    (req,) = receiver.requests
    body = json.loads(req["body"])
    (_d, m), = committed_sets(storage)
    assert body["status"] == "ok" and body["exit_code"] == 0
    assert body["set"] == m["id"]
    assert body["failed_sources"] == []
    assert body["bytes_stored"] == sum(a["bytes_out"] for a in m["artifacts"])
    assert body["text"].startswith(":white_check_mark: sauve backup of default succeeded")
    assert m["id"] in body["text"]


# ---- healthcheck --------------------------------------------------------------

def test_healthcheck_start_then_success(pg, sauve, dbs, receiver):
    db = dbs.empty("hcok")
    uuid = token()
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db,
                                 "SAUVE_HEALTHCHECK_URL": receiver.url(f"/ping/{uuid}")})
    assert r.code == 0, r.describe()
    assert [(q["method"], q["path"]) for q in receiver.requests] == [
        ("POST", f"/ping/{uuid}/start"), ("POST", f"/ping/{uuid}")]
    assert receiver.requests[1]["body"].strip() == r.summary["msg"]
    assert uuid not in r.all_output()


def test_healthcheck_start_then_fail_with_the_summary(pg, sauve, dbs, receiver):
    db = dbs.empty("hcfail")
    uuid = token()
    r = sauve.run("backup", env={**wrong_password_env(db),
                                 "SAUVE_HEALTHCHECK_URL": receiver.url(f"/ping/{uuid}?rid=1")})
    assert r.code == 75, r.describe()
    assert [(q["method"], q["path"]) for q in receiver.requests] == [
        ("POST", f"/ping/{uuid}/start?rid=1"), ("POST", f"/ping/{uuid}/fail?rid=1")]
    body = receiver.requests[1]["body"].strip()
    assert body == r.summary["msg"]
    assert "password authentication failed" in body


# ---- receivers that fail ------------------------------------------------------

def test_hung_receiver_costs_one_timeout_and_exit_3(pg, sauve, dbs, hanger):
    db = dbs.empty("hang")
    baseline = time.monotonic()
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db})
    assert r.code == 0, r.describe()
    baseline = time.monotonic() - baseline

    timeout = 3
    t0 = time.monotonic()
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_NOTIFY_TIMEOUT": str(timeout),
                                 "SAUVE_PUSHGATEWAY_URL": hanger.url("/pgw")}, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.code == 3, r.describe()
    # It waited for the receiver, once: no retry after a timeout.
    assert timeout - 0.5 <= elapsed <= baseline + timeout + 2.5, (elapsed, baseline)
    assert "notification failed" in r.summary["msg"]
    assert f"pushgateway (http://127.0.0.1:{hanger.port})" in r.summary["msg"]
    assert r.any_line("no answer within 3 s", level=("warn", "warning"))


def test_refused_connection_is_exit_3_and_names_only_the_host(pg, sauve, dbs, storage):
    db = dbs.empty("refused")
    port = free_port()
    secret = token()
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_NOTIFY_ON": "always",
                                 "SAUVE_NOTIFY_URL": f"http://127.0.0.1:{port}/hooks/{secret}?k={secret}"})
    assert r.code == 3, r.describe()
    assert len(committed_sets(storage)) == 1, "the backup itself succeeded"
    ws = warnings(r)
    assert ws, r.describe()
    assert any(f"http://127.0.0.1:{port}" in json.dumps(w) for w in ws), ws
    assert secret not in r.all_output()
    assert "/hooks" not in r.all_output()
    assert r.summary["msg"].startswith("backup ok: ")
    assert f"notification failed: webhook (http://127.0.0.1:{port})" in r.summary["msg"]
    assert r.summary["msg"] in r.termination


def test_failed_backup_with_failing_notifiers_keeps_its_own_code(pg, sauve, dbs, hanger):
    db = dbs.empty("keep")
    port = free_port()
    r = sauve.run("backup", env={**wrong_password_env(db), "SAUVE_NOTIFY_TIMEOUT": "2",
                                 "SAUVE_NOTIFY_URL": f"http://127.0.0.1:{port}/hook",
                                 "SAUVE_PUSHGATEWAY_URL": hanger.url("/pgw"),
                                 "SAUVE_HEALTHCHECK_URL": f"http://127.0.0.1:{port}/hc"}, timeout=60)
    assert r.code == 75, r.describe()
    assert r.summary["msg"].startswith("backup failed: cannot connect to postgres")
    for channel in ("healthcheck", "webhook", "pushgateway"):
        assert channel in r.summary["msg"], r.summary["msg"]


def test_invalid_url_does_not_stop_the_backup(pg, sauve, dbs, storage):
    db = dbs.empty("badurl")
    secret = token()
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_PUSHGATEWAY_URL": f"pgw:9091/{secret}"})
    assert r.code == 3, r.describe()
    assert len(committed_sets(storage)) == 1
    assert "SAUVE_PUSHGATEWAY_URL" in r.summary["msg"]
    assert secret not in r.all_output()


def test_notify_on_is_validated(pg, sauve, dbs):
    r = sauve.run("backup", env={"SAUVE_NOTIFY_ON": "sometimes"})
    assert r.code == 78, r.describe()
    assert "SAUVE_NOTIFY_ON" in r.summary["msg"]


# ---- what is logged and sent ----------------------------------------------------

def test_answer_bodies_are_never_logged(pg, sauve, dbs, receiver):
    """An Express 404 echoes the path, token included: only the status is logged."""
    db = dbs.empty("echo")
    secret = token()
    receiver.status = 404
    receiver.answer = f"Cannot POST /hook/{secret}".encode()
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_NOTIFY_ON": "always",
                                 "SAUVE_NOTIFY_URL": receiver.url(f"/hook/{secret}"),
                                 "SAUVE_HEALTHCHECK_URL": receiver.url(f"/ping/{secret}"),
                                 "SAUVE_PUSHGATEWAY_URL": receiver.url("/pgw")})
    assert r.code == 3, r.describe()
    assert len(receiver.requests) == 4, receiver.requests
    out = r.all_output()
    assert secret not in out
    assert "Cannot POST" not in out
    ws = [json.dumps(w) for w in warnings(r)]
    for channel in ("healthcheck", "webhook", "pushgateway"):
        assert any(channel in w and "HTTP 404" in w for w in ws), (channel, ws)


def test_sent_texts_mask_registered_secrets(pg, sauve, dbs, receiver):
    """A secret (here PGPASSWORD, equal to the database name the error quotes)
    is masked in what the webhook and the healthcheck receive, as in the log."""
    db = dbs.empty("maskdb")
    uuid = token()
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "PGUSER": "app", "PGPASSWORD": db,
                                 "SAUVE_NOTIFY_URL": receiver.url("/hook"),
                                 "SAUVE_HEALTHCHECK_URL": receiver.url(f"/ping/{uuid}")})
    assert r.code == 75, r.describe()
    assert db not in r.all_output()
    bodies = {q["path"]: q["body"] for q in receiver.requests}
    fail = bodies[f"/ping/{uuid}/fail"]
    hook = bodies["/hook"]
    assert db not in fail and "***" in fail, fail
    assert db not in hook and "***" in hook, hook
    body = json.loads(hook)
    assert "***" in body["text"] and "***" in body["content"] and "***" in body["summary"]


def test_hung_receivers_stay_within_the_time_budget(pg, sauve, dbs, hanger):
    """All calls of a run take at most 2 x notify.timeout + 5 s: the calls
    after the budget is spent are skipped with a warning naming them."""
    db = dbs.empty("budget")
    baseline = time.monotonic()
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db})
    assert r.code == 0, r.describe()
    baseline = time.monotonic() - baseline

    timeout = 6  # 4 calls of 6 s = 24 s, budget 17 s
    t0 = time.monotonic()
    r = sauve.run("backup", env={"SAUVE_PG_DATABASES": db, "SAUVE_NOTIFY_TIMEOUT": str(timeout),
                                 "SAUVE_NOTIFY_ON": "always",
                                 "SAUVE_HEALTHCHECK_URL": hanger.url("/hc"),
                                 "SAUVE_NOTIFY_URL": hanger.url("/hook"),
                                 "SAUVE_PUSHGATEWAY_URL": hanger.url("/pgw")}, timeout=90)
    elapsed = time.monotonic() - t0
    assert r.code == 3, r.describe()
    assert elapsed <= baseline + 2 * timeout + 5 + 2, (elapsed, baseline)
    assert elapsed >= 2 * timeout + 5 - 1, (elapsed, baseline)
    skipped = r.any_line("notification skipped", "pushgateway", level=("warn", "warning"))
    assert skipped, r.describe()
    assert "pushgateway" in r.summary["msg"], r.summary["msg"]
