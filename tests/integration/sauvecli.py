"""Running the sauve binary under a controlled environment, and reading what
it leaves in file:// storage."""

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import time

import pytest

# The id of a set this sauve writes: its UTC start, then its milliseconds
# and 5 random hex digits.
SET_ID_RE = re.compile(r"^\d{8}T\d{6}Z-\d{3}[0-9a-f]{5}$")


def sauve_bin():
    path = os.environ.get("SAUVE_BIN")
    if not path:
        for cand in ("build-it/sauve", "build/sauve"):
            full = os.path.join(os.path.dirname(__file__), "..", "..", cand)
            if os.access(full, os.X_OK):
                return os.path.abspath(full)
        raise RuntimeError("set SAUVE_BIN to the sauve binary")
    return os.path.abspath(path)


def base_env(home):
    """The minimal environment every sauve run starts from: nothing of the
    developer's environment (AWS_*, PG*, SAUVE_*) leaks in. HOME is an empty
    directory so that no ~/.pgpass or ~/.pg_service.conf is read."""
    return {"PATH": "/usr/bin:/bin", "HOME": home, "TZ": "UTC"}


class Result:
    """What one sauve run produced.

    code: exit status (negative: killed by that signal)
    stdout: str; stderr: str
    lines: stderr lines parsed as JSON objects (None for a line that is not
           JSON; bad_lines lists those)
    summary: the last parsed line (or None)
    termination: content of the termination log (None when not written)
    """

    def __init__(self, argv, code, stdout, stderr, termination):
        self.argv = argv
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        self.termination = termination
        self.lines = []
        self.bad_lines = []
        for raw in stderr.splitlines():
            if raw.strip() == "":
                continue
            try:
                obj = json.loads(raw)
                if not isinstance(obj, dict):
                    raise ValueError("not an object")
            except ValueError:
                self.bad_lines.append(raw)
                obj = None
            self.lines.append(obj)
        self.summary = self.lines[-1] if self.lines else None

    def describe(self):
        return (f"sauve {' '.join(self.argv)} -> exit {self.code}\n"
                f"--- stdout ---\n{self.stdout[-3000:]}\n"
                f"--- stderr ---\n{self.stderr[-6000:]}\n"
                f"--- termination log ---\n{self.termination!r}")

    def messages(self):
        """Every JSON log line re-serialised, one string each: for "does any
        message name X" checks that do not depend on the field it is in."""
        return [json.dumps(l, ensure_ascii=False) for l in self.lines if l]

    def any_line(self, *needles, level=None):
        """The first log line whose JSON text contains every needle
        (case-insensitive), optionally at a given level."""
        for l in self.lines:
            if not l:
                continue
            if level and str(l.get("level", "")).lower() not in level:
                continue
            text = json.dumps(l, ensure_ascii=False).lower()
            if all(n.lower() in text for n in needles):
                return l
        return None

    def all_output(self):
        return "\n".join([self.stdout, self.stderr, self.termination or ""])

    def check_log_contract(self, json_stdout=False):
        """The logging contract every run honours: stderr is JSON lines with
        time/level/msg, the last is a summary whose exit_code is the process
        status, the termination log carries the summary, and stdout is empty
        unless --json asked for output."""
        d = self.describe()
        assert self.code >= 0, f"sauve was killed by signal {-self.code}\n{d}"
        assert not self.bad_lines, f"stderr lines that are not JSON objects: {self.bad_lines[:5]}\n{d}"
        assert self.lines, f"no log line at all\n{d}"
        for l in self.lines:
            for field in ("time", "level", "msg"):
                assert field in l, f"log line without {field!r}: {l}\n{d}"
        assert "exit_code" in self.summary, f"last line is not a summary (no exit_code): {self.summary}\n{d}"
        assert self.summary["exit_code"] == self.code, (
            f"summary exit_code {self.summary['exit_code']} != process exit {self.code}\n{d}")
        assert self.termination is not None and self.termination.strip(), (
            f"termination log not written\n{d}")
        assert str(self.summary["msg"]) in self.termination, (
            f"termination log {self.termination!r} does not carry the summary "
            f"{self.summary['msg']!r}\n{d}")
        if not json_stdout:
            assert self.stdout == "", f"stdout not empty without --json\n{d}"


class Sauve:
    """Runs sauve for one test. env: the test's settings on top of base_env;
    every run gets its own termination log under workdir."""

    def __init__(self, workdir, env):
        self.workdir = workdir
        self.home = os.path.join(workdir, "home")
        os.makedirs(self.home, exist_ok=True)
        self.env = dict(env)
        self.runs = 0

    def _prepare(self, args, env, unset):
        self.runs += 1
        term = os.path.join(self.workdir, f"termination-{self.runs}.log")
        full = base_env(self.home)
        full["SAUVE_TERMINATION_LOG"] = term
        full.update(self.env)
        full.update(env or {})
        for k in unset or ():
            full.pop(k, None)
        return [sauve_bin()] + list(args), full, term

    @staticmethod
    def _read(path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def run(self, *args, env=None, unset=(), stdin=subprocess.DEVNULL,
            timeout=600, check_log=True, json_stdout=None):
        argv, full, term = self._prepare(args, env, unset)
        p = subprocess.run(argv, env=full, stdin=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout,
                           cwd=self.workdir)
        r = Result(list(args), p.returncode,
                   p.stdout.decode("utf-8", "replace"),
                   p.stderr.decode("utf-8", "replace"), self._read(term))
        trace(r)
        if check_log:
            r.check_log_contract(
                json_stdout="--json" in args if json_stdout is None else json_stdout)
        return r

    def start(self, *args, env=None, unset=()):
        """Starts sauve in the background; finish() collects it."""
        argv, full, term = self._prepare(args, env, unset)
        p = subprocess.Popen(argv, env=full, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             cwd=self.workdir)
        p._sauve_args = list(args)
        p._sauve_term = term
        return p

    def finish(self, p, timeout):
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise AssertionError(
                f"sauve {' '.join(p._sauve_args)} did not exit within {timeout}s; "
                f"stderr: {err.decode('utf-8', 'replace')[-4000:]}")
        r = Result(p._sauve_args, p.returncode, out.decode("utf-8", "replace"),
                   err.decode("utf-8", "replace"), self._read(p._sauve_term))
        trace(r)
        return r


def trace(result):
    """With SAUVE_IT_TRACE=FILE, every run's output is appended to FILE: a
    record of what sauve said, for reading after a green run too."""
    path = os.environ.get("SAUVE_IT_TRACE")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(result.describe() + "\n\n")


def wait_for(condition, timeout, what, interval=0.05):
    """Polls condition() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = condition()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---- storage ----------------------------------------------------------------

def set_dirs(storage_dir, name="default"):
    """Set directories under storage_dir/name, sorted by id (oldest first)."""
    root = os.path.join(storage_dir, name)
    if not os.path.isdir(root):
        return []
    return sorted(os.path.join(root, d) for d in os.listdir(root)
                  if os.path.isdir(os.path.join(root, d)))


def committed_sets(storage_dir, name="default"):
    """(set_dir, manifest) for every set that has a manifest.json."""
    out = []
    for d in set_dirs(storage_dir, name):
        m = os.path.join(d, "manifest.json")
        if os.path.exists(m):
            with open(m, encoding="utf-8") as f:
                out.append((d, json.load(f)))
    return out


def all_files(root):
    """Every regular file under root (absolute paths), sorted."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        out.extend(os.path.join(dirpath, f) for f in files)
    return sorted(out)


def snapshot(root):
    """{relative path: sha256} of every file under root."""
    return {os.path.relpath(p, root): sha256_file(p) for p in all_files(root)}


def forge_artifact(set_dir, manifest, artifact, data, bytes_in=None):
    """Replaces artifact's stored object with data and rewrites the manifest
    to match it (size, SHA-256, totals; bytes_in when given), as anyone with
    write access to the bucket can: then only what a manifest cannot be made
    to hide (the content's own checks) protects a restore or a verify."""
    with open(os.path.join(set_dir, artifact["key"]), "wb") as f:
        f.write(data)
    manifest["totals"]["bytes_out"] += len(data) - artifact["bytes_out"]
    artifact["bytes_out"] = len(data)
    artifact["sha256"] = hashlib.sha256(data).hexdigest()
    if bytes_in is not None:
        manifest["totals"]["bytes_in"] += bytes_in - artifact["bytes_in"]
        artifact["bytes_in"] = bytes_in
    with open(os.path.join(set_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def zstd_decompress_to(path, out_path):
    with open(out_path, "wb") as out:
        subprocess.run(["zstd", "-q", "-d", "-c", path], stdout=out, check=True)
    return out_path


def artifact(manifest, key):
    for a in manifest.get("artifacts", []):
        if a.get("key") == key:
            return a
    raise AssertionError(f"manifest has no artifact with key {key!r}: "
                         f"{[a.get('key') for a in manifest.get('artifacts', [])]}")


def processes_matching(needle):
    """PIDs of live (non-zombie) processes whose command line contains needle."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if needle in cmd and state != "Z":
            pids.append(int(pid))
    return pids


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def kill_quietly(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def small_volume(path, size):
    """A tmpfs of size bytes mounted at path (made here) for the block:
    a volume that something does not fit on."""
    os.makedirs(path)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={max(size // 1024, 64)}k", "sauve-test", path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", path], check=True)
