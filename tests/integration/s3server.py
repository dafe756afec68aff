"""A throwaway S3 server for the integration tests: Ceph's RADOS Gateway.

One ceph-mon, one ceph-osd with the memstore object store (data in the OSD
process's memory) and one radosgw, all on 127.0.0.1, cluster auth off, in a
temporary directory that also holds every daemon's log. The monitor and the
gateway get ephemeral ports; the OSD takes 4 ports from Ceph's own 6800-7300
range (it skips ports in use, so parallel sessions coexist). An S3 user with
generated keys is created with radosgw-admin. Starting takes 1-2 s (the
monitor commits map changes at once instead of every second) and ~140 MB of
RAM; the OSD then grows with the data stored (tcmalloc keeps what it freed).

RGW takes any region in the SigV4 scope (it does not check it) and answers
GetBucketLocation with "default"; errors carry a Code but no Message.

Only radosgw can be restarted (kill_rgw/start_rgw): the data lives in the
OSD, which keeps running, so objects written before a restart are still
there after it, on the same port.

The gateway serves plain HTTP (endpoint) and HTTPS (https_endpoint), with a
server certificate for 127.0.0.1, localhost and *.s3.localhost signed by a
throwaway CA made with openssl at start (ca_file; make_ca makes others).
RGW refuses server-side encryption over plain HTTP (`rgw crypt require ssl`,
left at its default): SSE-C and SSE-KMS tests use the HTTPS endpoint
(env(tls=True), client(tls=True), aws(..., tls=True)).

Independent clients for checking what sauve wrote: boto3 (Debian's
python3-boto3, run the tests with /usr/bin/python3) and Debian's awscli v2
(/usr/bin/aws; an `aws` found on PATH may be a pip-installed v1).

Set SAUVE_IT_S3_KEEP=1 to keep the temporary directory after stop() (for
reading the logs); the daemons are stopped regardless.
"""

import atexit
import base64
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

AWS_CLI = "/usr/bin/aws"
CEPH_BINDIR = "/usr/bin"

# Environment variables that point clients at a CA bundle or otherwise
# change how an AWS client behaves; none of them may leak into a client
# of this test server (its CA is given explicitly).
_LEAKY_ENV = ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
              "SSL_CERT_DIR", "CURL_CA_BUNDLE")


def free_port():
    """An ephemeral TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(data.splitlines()[-lines:])


def _rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class S3StartError(RuntimeError):
    pass


def _openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, env={"PATH": "/usr/bin:/bin"})
    if p.returncode != 0:
        raise S3StartError(f"openssl {' '.join(args)} exited {p.returncode}: {p.stderr}")


def make_ca(directory, name):
    """A throwaway certificate authority (EC P-256, valid 2 days) in
    directory: returns (certificate path, private key path)."""
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, f"{name}-ca.pem"), os.path.join(directory, f"{name}-ca.key")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", f"/CN=sauve tests {name} CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", key, "-out", cert, cwd=directory)
    return cert, key


def issue_server_cert(directory, ca, names=("127.0.0.1", "localhost", "s3.localhost", "*.s3.localhost")):
    """A server certificate for names (IP addresses and DNS names) signed by
    ca (as make_ca returns it): returns (certificate path, key path)."""
    cert, key, csr = (os.path.join(directory, f) for f in ("server.pem", "server.key", "server.csr"))
    ext = os.path.join(directory, "server.ext")
    sans = ",".join(("IP:" if n.replace(".", "").isdigit() else "DNS:") + n for n in names)
    with open(ext, "w") as f:
        f.write(f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", f"/CN={names[0]}", "-keyout", key, "-out", csr, cwd=directory)
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
             "-days", "2", "-extfile", ext, "-out", cert, cwd=directory)
    return cert, key


def _die_with_parent():
    """In the child before exec: SIGKILL it when the thread that started it
    ends (so a SIGKILLed pytest leaves no daemon behind; the daemons run in
    their own sessions, so signals to pytest's process group miss them)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Daemon:
    def __init__(self, name, argv, out_path, log_path):
        self.name = name
        self.argv = argv
        self.out_path = out_path      # the daemon's stdout/stderr
        self.log_path = log_path      # its Ceph log file
        self.proc = None
        self.pid = None               # of the last process, also once reaped

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, timeout=30):
        """SIGKILL (no clean shutdown: a memstore OSD would write its whole
        store to disk on a clean one) and reap."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.kill()
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None


class S3Server:
    """Call start(); stop() is safe to call at any time and more than once."""

    def __init__(self, region="us-east-1", memstore_bytes=4 << 30,
                 start_timeout=180):
        self.region = region
        self.memstore_bytes = memstore_bytes
        self.start_timeout = start_timeout
        self.base = None
        self.port = None
        self.tls_port = None
        self.mon_port = None
        self.endpoint = None
        self.https_endpoint = None
        self.ca_file = None           # the CA that signed the HTTPS endpoint's certificate
        self._server_cert = None
        self.access_key = "SAUVEIT" + secrets.token_hex(6).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.user = "sauve-it"
        self.kms_key_id = "sauve-it-key-" + secrets.token_hex(4)
        self.kms_key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.fsid = str(uuid.uuid4())
        self.daemons = {}
        self.start_seconds = None
        self._atexit = False

    # ---- paths and environment --------------------------------------------

    def _p(self, *parts):
        return os.path.join(self.base, *parts)

    @property
    def conf(self):
        return self._p("ceph.conf")

    def _tool_env(self):
        """Environment for the Ceph tools: nothing inherited (CEPH_ARGS,
        CEPH_CONF...)."""
        return {"PATH": "/usr/bin:/bin", "HOME": self._p("home"),
                "LC_ALL": "C.UTF-8"}

    def _write_conf(self):
        b = self.base
        conf = f"""[global]
fsid = {self.fsid}
mon host = v2:127.0.0.1:{self.mon_port}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = {b}/keyring
run dir = {b}/run
crash dir = {b}/crash
pid file =
log file = {b}/log/$name.log
log to stderr = false
err to stderr = true
mon cluster log file = {b}/log/cluster.log
mon data = {b}/mon/$cluster-$id
osd data = {b}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = {self.memstore_bytes}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
# Commit monitor changes at once instead of batching them for 1 s: the
# gateway's first start creates its pools one map change after another.
paxos propose interval = 0.01
paxos min wait = 0.001

[client]
# Without this, with auth off, radosgw hangs for 300 s on
# "get_initial_auth_request returned -13".
ms mon client mode = crc

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{self.port} ssl_endpoint=127.0.0.1:{self.tls_port} ssl_certificate={self._server_cert[0]} ssl_private_key={self._server_cert[1]}
rgw dns name = s3.localhost
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = {self.kms_key_id}={self.kms_key}
rgw enable ops log = false
"""
        with open(self.conf, "w") as f:
            f.write(conf)

    # ---- helpers for start ------------------------------------------------

    def _diagnostics(self):
        parts = []
        # The last started first: it is the likeliest culprit.
        for d in reversed(list(self.daemons.values())):
            state = ("running" if d.alive() else
                     f"exited {d.proc.returncode}" if d.proc else "not running")
            parts.append(f"--- {d.name} ({state}) output ---\n{_tail(d.out_path, 15)}")
            parts.append(f"--- {d.name} log {d.log_path} ---\n{_tail(d.log_path)}")
        return "\n".join(parts)

    def _fail(self, what):
        raise S3StartError(f"S3 server (radosgw) failed: {what}\n"
                           f"base dir: {self.base}\n{self._diagnostics()}")

    def _run(self, argv, timeout=60, what=None):
        try:
            p = subprocess.run(argv, env=self._tool_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, timeout=timeout, cwd=self.base)
        except subprocess.TimeoutExpired as e:
            self._fail(f"{what or argv[0]} did not finish within {timeout}s: "
                       f"{' '.join(argv)}\nstderr: {e.stderr}")
        if p.returncode != 0:
            self._fail(f"{what or argv[0]} exited {p.returncode}: {' '.join(argv)}\n"
                       f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-4000:]}")
        return p.stdout

    def _ceph(self, *args, timeout=60):
        return self._run([os.path.join(CEPH_BINDIR, "ceph"), "-c", self.conf,
                          "--connect-timeout", "30", *args], timeout=timeout,
                         what="ceph " + " ".join(args[:2]))

    def _spawn(self, name, argv, ceph_name):
        d = _Daemon(name, argv, self._p("log", f"{name}.out"),
                    self._p("log", f"{ceph_name}.log"))
        with open(d.out_path, "ab") as out:
            d.proc = subprocess.Popen(argv, env=self._tool_env(),
                                      stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=subprocess.STDOUT, cwd=self.base,
                                      start_new_session=True,
                                      preexec_fn=_die_with_parent)
        d.pid = d.proc.pid
        self.daemons[name] = d
        return d

    def _wait(self, condition, what, daemon, deadline):
        while True:
            if not daemon.alive():
                self._fail(f"{daemon.name} exited ({daemon.proc.returncode}) "
                           f"while waiting for {what}")
            if condition():
                return
            if time.monotonic() > deadline:
                self._fail(f"timed out waiting for {what}")
            time.sleep(0.1)

    def _http_answers(self):
        """Both endpoints answer (HTTPS verified against ca_file)."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=ctx))
        for url in (self.endpoint, self.https_endpoint):
            try:
                with opener.open(url + "/", timeout=2) as r:
                    r.read()
            except urllib.error.HTTPError:
                pass             # any HTTP answer (403...) means it is serving
            except (OSError, urllib.error.URLError):
                return False
        return True

    def _osd_up(self):
        out = self._ceph("osd", "stat", "--format", "json")
        st = json.loads(out)
        st = st.get("osdmap", st)
        return st.get("num_up_osds") == 1 and st.get("num_in_osds") == 1

    # ---- life cycle -------------------------------------------------------

    def start(self):
        t0 = time.monotonic()
        deadline = t0 + self.start_timeout
        self.base = tempfile.mkdtemp(prefix="sauve-it-s3-")
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        try:
            for sub in ("run", "log", "crash", "home", "mon", "osd"):
                os.mkdir(self._p(sub))
            self.mon_port = free_port()
            self.port = free_port()
            self.tls_port = free_port()
            self.endpoint = f"http://127.0.0.1:{self.port}"
            self.https_endpoint = f"https://127.0.0.1:{self.tls_port}"
            tls = self._p("tls")
            ca = make_ca(tls, "rgw")
            self.ca_file = ca[0]
            self._server_cert = issue_server_cert(tls, ca)
            self._write_conf()

            # Monitor.
            monmap = self._p("monmap")
            self._run(["monmaptool", "--create", "--fsid", self.fsid,
                       "--addv", "a", f"[v2:127.0.0.1:{self.mon_port}]",
                       "--enable-all-features", "--clobber", monmap])
            self._run(["ceph-authtool", "--create-keyring", self._p("keyring"),
                       "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"])
            self._run(["ceph-mon", "-c", self.conf, "--mkfs", "-i", "a",
                       "--monmap", monmap, "--keyring", self._p("keyring")])
            self._spawn("ceph-mon", ["ceph-mon", "-f", "-c", self.conf, "-i", "a"],
                        "mon.a")

            # OSD (memstore).
            osd_uuid = str(uuid.uuid4())
            osd_id = self._ceph("osd", "new", osd_uuid).strip()
            if osd_id != "0":
                self._fail(f"ceph osd new returned id {osd_id!r}, expected 0")
            os.mkdir(self._p("osd", "ceph-0"))
            self._run(["ceph-osd", "-c", self.conf, "-i", "0", "--mkfs",
                       "--osd-uuid", osd_uuid], timeout=120)
            osd = self._spawn("ceph-osd", ["ceph-osd", "-f", "-c", self.conf,
                                           "-i", "0"], "osd.0")
            self._wait(self._osd_up, "the OSD to be up and in", osd, deadline)

            # Gateway; it creates its pools on its first start.
            self._start_rgw(deadline)

            self._run(["radosgw-admin", "-c", self.conf, "user", "create",
                       "--uid", self.user, "--display-name", "sauve tests",
                       "--access-key", self.access_key,
                       "--secret-key", self.secret_key], timeout=120)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _start_rgw(self, deadline):
        rgw = self._spawn("radosgw", ["radosgw", "-f", "-c", self.conf,
                                      "-n", "client.rgw"], "client.rgw")
        self._wait(self._http_answers, f"radosgw to answer on {self.endpoint}",
                   rgw, deadline)

    def kill_rgw(self):
        """SIGKILL the gateway (as a crash would); the OSD and its data stay."""
        d = self.daemons.get("radosgw")
        if d:
            d.kill()
            self._drop_stale_watches()

    def _drop_stale_watches(self):
        """A killed radosgw leaves watches on its control objects; until the
        OSD times them out (30 s), every metadata change of the next gateway
        (CreateBucket...) waits for the dead one's acknowledgement. With no
        gateway running every watcher is a dead one: blocklisting its address
        makes the OSD drop its watches at once."""
        osd = self.daemons.get("ceph-osd")
        if not (osd and osd.alive()):
            return
        out = self._run([os.path.join(CEPH_BINDIR, "ceph"), "-c", self.conf,
                         "--admin-daemon", self._p("run", "ceph-osd.0.asok"),
                         "dump_watchers"], what="dump_watchers")
        addrs = set()
        for w in json.loads(out or "[]"):
            a = w.get("entity_addr_t", {})
            if "addr" in a and "nonce" in a:
                addrs.add(f"{a['addr']}/{a['nonce']}")
        for addr in sorted(addrs):
            self._ceph("osd", "blocklist", "add", addr)

    def start_rgw(self, timeout=120):
        """(Re)starts the gateway on the same port with the same data."""
        if self.rgw_running():
            return
        self._start_rgw(time.monotonic() + timeout)

    def rgw_running(self):
        d = self.daemons.get("radosgw")
        return d is not None and d.alive()

    def ensure_rgw(self):
        if not self.rgw_running():
            self.start_rgw()

    def stop(self):
        for name in ("radosgw", "ceph-osd", "ceph-mon"):
            d = self.daemons.get(name)
            if d:
                d.kill()
        if self.base and not os.environ.get("SAUVE_IT_S3_KEEP"):
            shutil.rmtree(self.base, ignore_errors=True)

    def pids(self):
        return {n: d.proc.pid for n, d in self.daemons.items() if d.alive()}

    def rss_mib(self):
        """Resident memory of each running daemon, in MiB, and the total."""
        out = {n: _rss_kib(pid) / 1024 for n, pid in self.pids().items()}
        out["total"] = sum(out.values())
        return out

    # ---- clients ----------------------------------------------------------

    def env(self, tls=False):
        """AWS_* settings reaching this server (for sauve or any SDK); with
        tls, its HTTPS endpoint and SAUVE_S3_CA_BUNDLE naming its CA."""
        env = {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL_S3": self.https_endpoint if tls else self.endpoint,
        }
        if tls:
            env["SAUVE_S3_CA_BUNDLE"] = self.ca_file
        return env

    def client(self, access_key=None, secret_key=None, region=None,
               verify=None, tls=False, **config):
        """A boto3 S3 client for this server: path-style addressing, no
        retries, no config or credentials file, no CA bundle from the
        environment (botocore would take AWS_CA_BUNDLE, or
        REQUESTS_CA_BUNDLE when verify is not given). With tls, the HTTPS
        endpoint, verified against this server's CA unless verify says
        otherwise. config: more botocore.config.Config arguments."""
        import boto3
        import botocore.config
        import botocore.session

        bs = botocore.session.Session()
        # Nothing from the developer's ~/.aws or AWS_* environment.
        for var, value in (("config_file", "/nonexistent"),
                           ("credentials_file", "/nonexistent"),
                           ("profile", None), ("ca_bundle", None),
                           ("region", None)):
            bs.set_config_variable(var, value)
        session = boto3.session.Session(botocore_session=bs)
        cfg = botocore.config.Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=10, read_timeout=60,
            **config)
        if verify is None:
            verify = self.ca_file if tls else True
        return session.client(
            "s3", endpoint_url=self.https_endpoint if tls else self.endpoint,
            region_name=region or self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            verify=verify, config=cfg)

    def make_bucket(self, name):
        self.client().create_bucket(Bucket=name)
        return name

    def aws_env(self, **extra):
        home = self._p("home")
        cfg = os.path.join(home, "aws-config")
        if not os.path.exists(cfg):
            with open(cfg, "w") as f:
                f.write(f"[default]\nregion = {self.region}\n"
                        "s3 =\n    addressing_style = path\n")
        env = {
            "PATH": "/usr/bin:/bin", "HOME": home, "LC_ALL": "C.UTF-8",
            "AWS_CONFIG_FILE": cfg,
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        env.update(extra)
        for k in _LEAKY_ENV:
            env.pop(k, None)
        return env

    def aws(self, *args, input=None, check=True, env=None, timeout=300, tls=False):
        """Runs Debian's awscli v2 against this server (with tls, its HTTPS
        endpoint and --ca-bundle). args: e.g. ("s3api", "list-objects-v2",
        "--bucket", b). Returns the CompletedProcess (stdout/stderr as bytes
        when input is bytes, else str). With check, a non-zero exit raises
        AssertionError carrying stderr."""
        if tls:
            argv = [AWS_CLI, "--endpoint-url", self.https_endpoint, "--ca-bundle", self.ca_file, *args]
        else:
            argv = [AWS_CLI, "--endpoint-url", self.endpoint, *args]
        text = not isinstance(input, (bytes, bytearray))
        p = subprocess.run(argv, env=self.aws_env(**(env or {})), input=input,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=text, timeout=timeout,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} exited {p.returncode}: "
                                 f"{p.stderr!r}")
        return p

    def aws_json(self, *args, **kw):
        """aws ... --output json, parsed (None for empty output)."""
        out = self.aws(*args, "--output", "json", **kw).stdout
        return json.loads(out) if out.strip() else None
