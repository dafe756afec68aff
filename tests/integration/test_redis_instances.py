"""Several named Redis instances (YAML redis.instances): each server is its
own artifact redis/NAME in one backup set, in its own mode, with its URL and
password read from files; each is restored by name into the server the
configuration names. Mistakes in the list are configuration errors that
name the file and line."""

import os

import pytest

from redisserver import MANAGED, fill_dataset, resp
from sauvecli import Sauve, committed_sets


def secret(workdir, name, value):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return path


def write_config(workdir, text):
    path = os.path.join(workdir, "config.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_two_instances_in_one_set_each_restored_by_name(servers, workdir, storage):
    sessions = servers(password="sessions-pass-41c9")
    cache = servers(extra=MANAGED, password="cache-pass-7d20")
    fill_dataset(sessions)
    cache.pipe(b"".join(resp("SET", f"c:{i}", i) for i in range(500)) + resp("SELECT", 2) +
               resp("HSET", "h", "f", "v") + resp("PEXPIRE", "h", 900_000))
    conf = write_config(workdir, f"""
redis:
  timeout: 30
  instances:
    - name: sessions
      url_file: {secret(workdir, "sessions-url", sessions.url())}
      password_file: {secret(workdir, "sessions-pass", sessions.password)}
    - name: cache
      url: {cache.url()}
      password_file: {secret(workdir, "cache-pass", cache.password)}
      mode: keys
""")
    sauve = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_CONFIG": conf})
    r = sauve.run("backup")
    assert r.code == 0, r.describe()
    for p in (sessions.password, cache.password):
        assert p not in r.all_output()
    (set_dir, m), = committed_sets(storage)
    arts = {a["name"]: a for a in m["artifacts"]}
    assert set(arts) == {"sessions", "cache"}
    assert (arts["sessions"]["key"], arts["sessions"]["mode"]) == ("redis/sessions.rdb.zst", "sync")
    assert (arts["cache"]["key"], arts["cache"]["mode"]) == ("redis/cache.keys.zst", "keys")
    assert arts["cache"]["items"] == 501
    with open(os.path.join(set_dir, "manifest.json")) as f:
        text = f.read()
    assert sessions.password not in text and cache.password not in text

    want = {"sessions": (sessions, sessions.digest()), "cache": (cache, cache.digest())}
    for name, (server, digest) in want.items():
        server.cli("FLUSHALL")
        # no --into: the instance of that name in the configuration, with its password file
        r = sauve.run("restore", f"redis:{name}", "--online", "--yes")
        assert r.code == 0, r.describe()
        assert server.digest() == digest, name
    assert 0 < int(cache.cli("PTTL", "h", db=2)) <= 900_000


@pytest.mark.parametrize("body, needle", [
    ("  instances:\n    - name: a\n      url: redis://127.0.0.1:1\n    - name: a\n      url: redis://127.0.0.1:2\n",
     "name 'a' is already used at line 3"),
    ("  instances:\n    - name: a\n      password: x\n", "has no url"),
    ("  instances:\n    - name: a\n      url: redis://127.0.0.1:1\n      mdoe: keys\n",
     "unknown key 'mdoe' in redis.instances[0] (did you mean 'mode'?)"),
    ("  instances:\n    - name: a\n      url: redis://127.0.0.1:1\n      mode: fast\n", "sync or keys"),
    ("  instances:\n    - name: a\n      url: redis://127.0.0.1:1\n      url_file: /nonexistent\n",
     "both url and url_file"),
    ("  instances: redis://127.0.0.1:1\n", "must be a list of mappings"),
])
def test_instance_list_mistakes_are_configuration_errors(workdir, storage, body, needle):
    conf = write_config(workdir, "redis:\n" + body)
    sauve = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_CONFIG": conf})
    r = sauve.run("backup")
    assert r.code == 78, r.describe()
    assert r.any_line(needle, "config.yaml"), r.describe()
    assert committed_sets(storage) == []


def test_env_instance_and_yaml_instance_may_not_share_a_name(workdir, storage):
    conf = write_config(workdir, "redis:\n  instances:\n    - name: default\n      url: redis://127.0.0.1:1\n")
    sauve = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_CONFIG": conf,
                            "SAUVE_REDIS_URL": "redis://127.0.0.1:2"})
    r = sauve.run("backup")
    assert r.code == 78, r.describe()
    assert r.any_line("'default' is used twice", "SAUVE_REDIS_NAME"), r.describe()


def test_an_unreachable_instance_is_named(workdir, storage):
    from pgserver import free_port
    port = free_port()
    conf = write_config(workdir, f"redis:\n  timeout: 5\n  instances:\n    - name: sessions\n"
                                 f"      url: redis://127.0.0.1:{port}\n")
    sauve = Sauve(workdir, {"SAUVE_STORAGE": "file://" + storage, "SAUVE_CONFIG": conf})
    r = sauve.run("backup")
    assert r.code == 75, r.describe()
    assert r.any_line("redis instance 'sessions'", str(port)), r.describe()
    assert committed_sets(storage) == []
