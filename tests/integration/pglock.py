"""A lock that the test holds in PostgreSQL: a barrier that it controls.

pg_dump takes ACCESS SHARE on every table it dumps before it writes a byte,
so while the test holds ACCESS EXCLUSIVE on one of them, sauve's pg_dump
waits, for as long as the test wants and without a sleep; blocked() says
when it waits (pg_blocking_pids), and release() lets it go."""

import subprocess

from pgserver import _harness_env


class HeldLock:
    """A psql session (Unix socket, superuser) that ran `BEGIN; <statement>`
    and holds what it took until release(). Use as a context manager: the
    lock is released on the way out, also when the test fails."""

    def __init__(self, pg, db, statement):
        self.pg = pg
        self.db = db
        self.proc = subprocess.Popen(
            [pg.bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", pg.datadir, "-p", str(pg.port), "-U", "postgres", "-d", db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=_harness_env(), text=True)
        self.proc.stdin.write(f"BEGIN;\n{statement};\nSELECT pg_backend_pid();\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()  # answered once the lock is held
        if not line.strip().isdigit():
            self.proc.kill()
            _, err = self.proc.communicate()
            raise RuntimeError(f"could not take the lock ({statement}): {err.strip()}")
        self.pid = int(line)
        self.released = False

    def blocked(self, statement=None):
        """How many backends wait for what this session holds; with
        statement, only those running a statement that starts with it
        ("LOCK TABLE": pg_dump's, not the row counts sauve runs beside it,
        which wait for the same lock)."""
        only = f" and query like '{statement}%'" if statement else ""
        return int(self.pg.scalar(
            "postgres",
            f"select count(*) from pg_stat_activity where {self.pid} = any(pg_blocking_pids(pid)){only}"))

    def blocked_pids(self):
        """Backend pids waiting for this session's lock."""
        return [int(r[0]) for r in self.pg.rows(
            "postgres",
            f"select pid from pg_stat_activity where {self.pid} = any(pg_blocking_pids(pid))")]

    def release(self):
        if self.released:
            return
        self.released = True
        try:
            self.proc.stdin.write("COMMIT;\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=60)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False
