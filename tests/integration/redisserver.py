"""Real redis-server 7 (Debian) for the tests: each instance on an
ephemeral port in its own temporary directory, plain or TLS (a throwaway
CA made with openssl), killed and removed at teardown. The harness talks to
it with Debian's redis-cli, an independent client."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from pgserver import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
REDIS_CHECK_RDB = shutil.which("redis-check-rdb") or "/usr/bin/redis-check-rdb"
ADMIN_PASSWORD = "admin-pass-7f3e9c1d"


def resp(*args):
    """One command in RESP, binary-safe (for redis-cli --pipe)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, (int, float)):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class ThrowawayCA:
    """A CA and a server certificate for 127.0.0.1 and localhost, made with
    openssl in directory d; client() adds a client certificate."""

    def __init__(self, d, name="ca"):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        self.ca_key = os.path.join(d, f"{name}.key")
        self.ca_crt = os.path.join(d, f"{name}.crt")
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                  "-subj", f"/CN=sauve test {name}", "-keyout", self.ca_key, "-out", self.ca_crt)

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def issue(self, cn, san=None):
        key = os.path.join(self.dir, f"{cn}.key")
        csr = os.path.join(self.dir, f"{cn}.csr")
        crt = os.path.join(self.dir, f"{cn}.crt")
        ext = os.path.join(self.dir, f"{cn}.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
        self._run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", key, "-out", csr)
        self._run("x509", "-req", "-in", csr, "-CA", self.ca_crt, "-CAkey", self.ca_key,
                  "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt)
        return crt, key


class RedisServer:
    """One redis-server. extra: config lines; tls: a ThrowawayCA (the server then
    listens with TLS only, and asks for client certificates when
    client_certs)."""

    def __init__(self, extra=(), tls=None, client_certs=False, password=ADMIN_PASSWORD, bind="127.0.0.1"):
        self.dir = tempfile.mkdtemp(prefix="sauve-redis-")
        self.port = free_port()
        self.password = password
        self.tls = tls
        self.proc = None
        conf = [
            f"bind {bind}",
            f"dir {self.dir}",
            "dbfilename dump.rdb",
            'save ""',
            "appendonly no",
            "repl-diskless-sync-delay 0",
            "enable-debug-command yes",
            f"logfile {self.dir}/redis.log",
        ]
        if password:
            conf.append(f"requirepass {password}")
        if tls:
            self.server_crt, self.server_key = tls.issue("redis-server", "IP:127.0.0.1,DNS:localhost")
            conf += ["port 0", f"tls-port {self.port}", f"tls-cert-file {self.server_crt}",
                     f"tls-key-file {self.server_key}", f"tls-ca-cert-file {tls.ca_crt}",
                     f"tls-auth-clients {'yes' if client_certs else 'no'}"]
            if client_certs:
                self.client_crt, self.client_key = tls.issue("sauve-client")
        else:
            conf.append(f"port {self.port}")
        conf += list(extra)
        self.conf = os.path.join(self.dir, "redis.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")

    def start(self):
        self.proc = subprocess.Popen([REDIS_SERVER, self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log()[-2000:]}")
            try:
                if self.cli("PING").strip() == "PONG":
                    return self
            except subprocess.CalledProcessError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer PING: {self.log()[-2000:]}")
            time.sleep(0.02)

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def cli_args(self):
        a = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), "--no-auth-warning"]
        if self.password:
            a += ["-a", self.password]
        if self.tls:
            a += ["--tls", "--cacert", self.tls.ca_crt]
            if getattr(self, "client_crt", None):
                a += ["--cert", self.client_crt, "--key", self.client_key]
        return a

    def cli(self, *args, db=0, raw=True):
        a = self.cli_args() + ["-n", str(db)] + (["--raw"] if raw else []) + list(args)
        return subprocess.run(a, check=True, capture_output=True, text=True, timeout=120).stdout

    def pipe(self, data):
        """Sends RESP commands (bytes) with redis-cli --pipe; asserts no error."""
        p = subprocess.run(self.cli_args() + ["--pipe"], input=data, capture_output=True, timeout=600)
        out = p.stdout.decode(errors="replace")
        assert p.returncode == 0 and "errors: 0" in out, out + p.stderr.decode(errors="replace")

    def url(self, user=None, password=None, host="127.0.0.1"):
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if user or password:
            auth = f"{user or ''}:{password}@" if password else f"{user}@"
        return f"{scheme}://{auth}{host}:{self.port}"

    def digest(self):
        return self.cli("DEBUG", "DIGEST").strip()

    def key_counts(self):
        """{db: keys} from INFO keyspace."""
        out = {}
        for line in self.cli("INFO", "keyspace").splitlines():
            if line.startswith("db"):
                db, rest = line.split(":", 1)
                out[int(db[2:])] = int(rest.split(",")[0].split("=")[1])
        return out

    def children(self):
        """PIDs of the server's children (a BGSAVE or diskless-sync fork)."""
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return [int(x) for x in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, AttributeError):
            return []

    def kill(self, sig=signal.SIGKILL):
        """Kills the server and its fork (a forked child outlives a killed
        parent, and would keep writing into the directory)."""
        if self.proc and self.proc.poll() is None:
            kids = self.children()
            self.proc.send_signal(sig)
            for k in kids:
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=30)

    def stop(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def load_rdb(rdb_path):
    """A plain redis-server started on rdb_path (dir + dbfilename), no
    password; the caller stops it."""
    s = RedisServer(password=None)
    shutil.copy(rdb_path, os.path.join(s.dir, "dump.rdb"))
    return s.start()


def fill_dataset(server, big_mb=2):
    """Every core type, several databases, binary strings, expiring keys, a
    stream with a consumer group, and a value over 1 MB."""
    cmds = [resp("SELECT", 0)]
    cmds.append(resp("SET", "str:plain", "hello"))
    cmds.append(resp("SET", b"str:bin\x00\xff", bytes(range(256)) * 3))
    cmds.append(resp("SET", "str:int", 12345))
    cmds.append(resp("SET", "str:big", os.urandom(big_mb * 1024 * 1024 // 2).hex()))
    cmds.append(resp("SET", "str:ttl", "soon", "PX", 86_400_000))
    for i in range(300):
        cmds.append(resp("RPUSH", "list:long", f"item-{i}" * 3))
    cmds.append(resp("RPUSH", "list:short", "a", "b", b"\x00c"))
    cmds.append(resp("SADD", "set:ints", *range(100)))
    cmds.append(resp("SADD", "set:strs", *[f"m{i}" for i in range(200)]))
    cmds.append(resp("ZADD", "zset:small", 1, "one", 2.5, "two", -3, "three"))
    zargs = []
    for i in range(500):
        zargs += [i * 0.5, f"member-{i}"]
    cmds.append(resp("ZADD", "zset:big", *zargs))
    cmds.append(resp("HSET", "hash:small", "f1", "v1", "f2", b"\x01\x02"))
    hargs = []
    for i in range(1000):
        hargs += [f"field-{i}", f"value-{i}" * 10]
    cmds.append(resp("HSET", "hash:big", *hargs))
    cmds.append(resp("EXPIRE", "hash:big", 100_000))
    for i in range(50):
        cmds.append(resp("XADD", "stream:a", "*", "n", i, "payload", f"p{i}"))
    cmds.append(resp("XGROUP", "CREATE", "stream:a", "grp", "0"))
    cmds.append(resp("XREADGROUP", "GROUP", "grp", "consumer-1", "COUNT", 10, "STREAMS", "stream:a", ">"))
    cmds.append(resp("SELECT", 3))
    for i in range(1000):
        cmds.append(resp("SET", f"db3:{i}", i))
    cmds.append(resp("SELECT", 15))
    cmds.append(resp("HSET", "db15:h", "a", "b"))
    server.pipe(b"".join(cmds))


def fill_bulk(server, keys, size):
    """keys keys of size incompressible bytes each (for transfers that take a while)."""
    batch = []
    for i in range(keys):
        batch.append(resp("SET", f"bulk:{i}", os.urandom(size)))
        if len(batch) == 512:
            server.pipe(b"".join(batch))
            batch = []
    if batch:
        server.pipe(b"".join(batch))


def connections_of(server, flag):
    """CLIENT LIST lines whose flags contain flag (S: a replica)."""
    out = server.cli("CLIENT", "LIST")
    return [l for l in out.splitlines() if f"flags={flag}" in l or
            any(part.startswith("flags=") and flag in part[6:] for part in l.split())]


def can_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def restore_online(rsauve, target, *args, password=None, env=None):
    """sauve restore redis:cache --online into the server target; with
    --clean, the target named again (--confirm host:port), as restore
    requires to replace data."""
    e = {"SAUVE_REDIS_PASSWORD": password or target.password}
    e.update(env or {})
    confirm = ("--confirm", f"127.0.0.1:{target.port}") if "--clean" in args else ("--yes",)
    return rsauve.run("restore", "redis:cache", "--online", "--into", target.url(), *args, *confirm, env=e)


# What a managed service (ElastiCache, Memorystore) does to a client that
# asks for the replication stream: SYNC and PSYNC are not there.
MANAGED = ['rename-command SYNC ""', 'rename-command PSYNC ""']


def assert_rdb_holds(source, rdb):
    """The RDB file passes redis-check-rdb, and a plain redis-server that
    loads it holds what source holds (DEBUG DIGEST, keys per database)."""
    check = subprocess.run([REDIS_CHECK_RDB, rdb], capture_output=True, text=True)
    assert check.returncode == 0 and "RDB looks OK" in check.stdout, check.stdout + check.stderr
    copy = load_rdb(rdb)
    try:
        assert copy.digest() == source.digest()
        assert copy.key_counts() == source.key_counts()
    finally:
        copy.stop()
