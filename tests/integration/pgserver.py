"""A throwaway PostgreSQL cluster for the integration tests: 15 by default
(Debian 12's own), or another major built from Debian's source by
scripts/pg-server.sh (make pg-server: 18 in build/pg/18).

The cluster runs as the `postgres` user (we run as root), listens on
127.0.0.1 on an ephemeral port, and keeps its socket in its data directory.
The harness itself talks to it through that Unix socket with `trust`
authentication, with the psql and pg_dump of the server's own major (no
password), so that what the harness reads never depends on what sauve does;
sauve connects over TCP with a SCRAM password.
"""

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile

DEFAULT_MAJOR = 15
PG_BINDIR = "/usr/lib/postgresql/15/bin"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    """An ephemeral TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir(major=DEFAULT_MAJOR):
    """The bin directory of PostgreSQL `major`: Debian's for 15; for any
    other, $SAUVE_PG<major>_BINDIR, else what `make pg-server` built
    (build/pg/<major>/bin)."""
    if int(major) == DEFAULT_MAJOR:
        return PG_BINDIR
    return os.environ.get(f"SAUVE_PG{int(major)}_BINDIR") or os.path.join(
        REPO, "build", "pg", str(int(major)), "bin")


def pg_bin(name, major=DEFAULT_MAJOR):
    return os.path.join(pg_bindir(major), name)


class PgUnavailable(RuntimeError):
    """The binaries of the asked major are not there (not built)."""


def _harness_env():
    """Environment for the harness's own psql/pg_dump: nothing inherited that
    could change their behaviour (PGPASSWORD, PGSERVICE, locale, TZ...)."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/nonexistent",
        "LC_ALL": "C.UTF-8",
        "PGTZ": "UTC",
        "PGCLIENTENCODING": "UTF8",
        "PGCONNECT_TIMEOUT": "10",
    }


class SqlError(RuntimeError):
    pass


class PgServer:
    """One PostgreSQL cluster. Call start(); stop() is safe to call twice."""

    def __init__(self, superuser_password=None, app_password=None, major=DEFAULT_MAJOR):
        self.major = int(major)
        self.bindir = pg_bindir(self.major)
        if not os.access(os.path.join(self.bindir, "postgres"), os.X_OK):
            how = ("apt-get install postgresql-15" if self.major == DEFAULT_MAJOR
                   else f"make pg-server, or set SAUVE_PG{self.major}_BINDIR")
            raise PgUnavailable(f"no PostgreSQL {self.major} server in {self.bindir}: {how}")
        self.base = tempfile.mkdtemp(prefix=f"sauve-it-pg{self.major}-")
        os.chmod(self.base, 0o755)
        self.datadir = os.path.join(self.base, "data")
        self.port = None
        self.host = "127.0.0.1"
        self.superuser = "postgres"
        # Passwords with a space, a quote and a backslash: anything that builds
        # a libpq conninfo string by hand without quoting breaks on them.
        self.superuser_password = superuser_password or (
            "su pw'\\" + secrets.token_hex(8))
        self.app_user = "app"
        self.app_password = app_password or ("app pw'\\" + secrets.token_hex(8))
        self.started = False
        self._pw = pwd.getpwnam("postgres")

    def bin(self, name):
        """The path of program `name` of this server's major."""
        return os.path.join(self.bindir, name)

    # ---- life cycle -------------------------------------------------------

    def _as_postgres(self, args, **kw):
        return subprocess.run(
            ["/usr/sbin/runuser", "-u", "postgres", "--"] + args,
            env=_harness_env(), check=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, **kw)

    def start(self):
        os.mkdir(self.datadir, 0o700)
        os.chown(self.datadir, self._pw.pw_uid, self._pw.pw_gid)
        self._as_postgres([
            self.bin("initdb"), "-D", self.datadir, "-U", "postgres",
            "-A", "trust", "--auth-host=scram-sha-256", "--no-locale",
            "--no-sync", "-E", "UTF8"])
        self.port = free_port()
        with open(os.path.join(self.datadir, "postgresql.auto.conf"), "a") as f:
            f.write(
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.datadir}'\n"
                "listen_addresses = '127.0.0.1'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 50\n"
                "log_min_messages = warning\n")
        self.logfile = os.path.join(self.base, "server.log")
        open(self.logfile, "w").close()
        os.chown(self.logfile, self._pw.pw_uid, self._pw.pw_gid)
        self._as_postgres([
            self.bin("pg_ctl"), "-D", self.datadir, "-l", self.logfile,
            "-w", "-t", "60", "start"])
        self.started = True
        self.psql("postgres", "ALTER ROLE postgres PASSWORD "
                  + quote_literal(self.superuser_password))
        self.psql("postgres",
                  "CREATE ROLE app LOGIN CREATEDB PASSWORD "
                  + quote_literal(self.app_password))
        self.server_version = self.scalar("postgres", "show server_version")
        self.server_version_num = int(
            self.scalar("postgres", "show server_version_num"))
        if self.server_version_num // 10000 != self.major:
            raise PgUnavailable(f"{self.bindir} started PostgreSQL {self.server_version}, "
                                f"not {self.major}")
        return self

    def stop(self):
        if self.started:
            try:
                self._as_postgres([self.bin("pg_ctl"), "-D", self.datadir,
                                   "-m", "immediate", "-w", "stop"])
            except subprocess.CalledProcessError:
                pass
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)

    # ---- SQL through the Unix socket (trust) ------------------------------

    def psql(self, db, sql, *, user="postgres", extra_args=()):
        """Runs SQL in db; returns stdout (unaligned, tuples only, '|'
        separated). Raises SqlError with psql's stderr on any error."""
        p = subprocess.run(
            [self.bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.datadir, "-p", str(self.port), "-U", user, "-d", db,
             *extra_args],
            input=sql, env=_harness_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=600)
        if p.returncode != 0:
            raise SqlError(f"psql on {db!r} failed ({p.returncode}): "
                           f"{p.stderr.strip()}\nSQL: {sql[:500]}")
        return p.stdout

    def scalar(self, db, sql):
        return self.psql(db, sql).rstrip("\n")

    def rows(self, db, sql):
        out = self.psql(db, sql)
        return [line.split("|") for line in out.splitlines() if line != ""]

    def database_exists(self, name):
        return self.scalar(
            "postgres",
            f"select count(*) from pg_database where datname = {quote_literal(name)}"
        ) == "1"

    def create_database(self, name, *, owner="postgres", template=None):
        sql = f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(owner)}"
        if template:
            sql += f" TEMPLATE {quote_ident(template)}"
        self.psql("postgres", sql)

    def drop_database(self, name):
        self.psql("postgres",
                  f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")

    def roles(self):
        return {r[0] for r in self.rows(
            "postgres", "select rolname from pg_authid where rolname !~ '^pg_'")}

    def tcp_env(self, user=None, password=None):
        """libpq variables that reach this server over TCP."""
        user = user or self.superuser
        env = {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": user}
        if password is not False:
            env["PGPASSWORD"] = password if password is not None else (
                self.superuser_password if user == self.superuser
                else self.app_password)
        return env


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value):
    return "'" + value.replace("'", "''") + "'"
