"""Redis and the directory trees in the chart (issues 9 and 12): config.redis
(the URL, or its password, from the Secret; TLS files from a Secret mounted
read-only), config.files.trees (the application's claims mounted read-only
in the backups, with a pod affinity to the application's pod for
ReadWriteOnce volumes), their restore Jobs in the restore template (a tree
and Redis' data volume mounted read-write there only) and the NetworkPolicy's
egress to Redis. ci/sources-values.yaml and values/everything-on.yaml turn
them on; test_apirules.py renders both through the API server's rules."""

import re
import shlex
import subprocess

import pytest
import yaml

from apirules import check, selector_matches
from conftest import (KUSTOMIZE, RenderError, configs, example, k8s_tool, kustomize, load_docs, one, pods,
                      restore_templates, user_made_secret, write_values)
from podrun import index_objects, run_spec
from test_apirules import adversarial
from test_schema import errors as schema_errors

SOURCES = example("sources-values.yaml")
EVERYTHING = adversarial("everything-on.yaml")
REDIS_URL = "rediss://backup:not-a-real-redis-password@redis-master.app.svc:6379"


def template_job(docs, key, **fill):
    """The Job of the restore template's key, its placeholders filled."""
    values = {"@ID@": "1", "@SET@": "latest", "@SOURCE@": "postgres:app", "@TARGET@": "app_check"}
    values.update({f"@{k}@": v for k, v in fill.items()})
    (cm,) = restore_templates(docs)
    text = cm["data"][key]
    for k, v in values.items():
        text = text.replace(k, v)
    (job,) = load_docs(text)
    return job


def pod_of(doc):
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if doc["kind"] == "Job":
        return doc["spec"]["template"]["spec"]
    return doc["spec"]


def claim_mounts(pod):
    """{mountPath: (claimName, mount readOnly, claim readOnly)} of the sauve container."""
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    out = {}
    for m in pod["containers"][0]["volumeMounts"]:
        pvc = vols[m["name"]].get("persistentVolumeClaim")
        if pvc:
            out[m["mountPath"]] = (pvc["claimName"], m.get("readOnly"), pvc.get("readOnly"))
    return out


def stand_ins(docs):
    """The Secrets the user makes: Redis' TLS files, the age identity."""
    return docs + [user_made_secret("redis-tls", {"ca.crt": "CA PEM"}),
                   user_made_secret("redis-client-tls", {"ca.crt": "CA", "tls.crt": "CRT", "tls.key": "KEY"}),
                   user_made_secret(),
                   user_made_secret("app-restore-credentials", {"password": "restore-pw"}),
                   user_made_secret("app-db-env", {}),  # everything-on's extraEnvFrom and extraVolumes
                   {"kind": "ConfigMap", "metadata": {"name": "minio-ca"}, "data": {"ca.crt": "PEM"}}]


@pytest.fixture(scope="module")
def sources(helm):
    docs, _ = helm(SOURCES)
    return docs


# --- sauve's configuration --------------------------------------------------------


def test_config_is_sauves_own_form(sources):
    cfg = yaml.safe_load(one(sources, "ConfigMap")["data"]["config.yaml"])
    assert cfg["files"] == {"trees": ["uploads=/data/uploads", "media=/data/media"],
                            "exclude": ["*.tmp", "media:/thumbnails/"], "exclude_caches": True}
    # the chart's own keys stay in the chart; the URL with its password in the Secret
    assert cfg["redis"] == {"name": "sessions"}


def test_sauve_reads_the_trees_and_redis_as_configured(helm, sauve_bin, tmp_path):
    """`sauve check` with the ConfigMap and the Secret's files as the pod
    gets them names the trees it was given (their paths here, under
    tmp_path, stand in for the mounts)."""
    docs, _ = helm(SOURCES)
    spec = run_spec(one(docs, "CronJob"), index_objects(stand_ins(docs)))
    assert spec.file(spec.environ["SAUVE_REDIS_URL_FILE"]) == REDIS_URL.encode()
    cfg = spec.file("/etc/sauve/config.yaml").decode().replace("/data/", f"{tmp_path}/")
    (tmp_path / "uploads").mkdir()
    (tmp_path / "media").mkdir()
    (tmp_path / "config.yaml").write_text(cfg)
    store = tmp_path / "store"
    store.mkdir()
    env = {"PATH": "/usr/bin:/bin", "SAUVE_CONFIG": str(tmp_path / "config.yaml"), "SAUVE_STORAGE": f"file://{store}",
           "SAUVE_LOG_FORMAT": "text", "PGHOST": "", "SAUVE_PG_DATABASES": ""}
    r = subprocess.run([sauve_bin, "list"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "warn" not in r.stderr.lower() and "unknown" not in r.stderr.lower(), r.stderr


# --- credentials: files of mounted Secrets, never values ------------------------------


@pytest.mark.parametrize("values", [SOURCES, EVERYTHING])
def test_redis_secrets_are_never_inline(helm, values):
    docs, text = helm(values)
    secrets = {"not-a-real-redis-password", REDIS_URL, "redis-pw"}
    for d in docs:
        if d["kind"] == "Secret":
            continue
        dumped = yaml.safe_dump(d)
        assert not any(s in dumped for s in secrets), d["kind"]
    for doc, tmpl in pods(docs) + [(j, j["spec"]["template"]) for j in all_template_jobs(docs)]:
        for e in tmpl["spec"]["containers"][0]["env"]:
            assert e["name"] not in ("SAUVE_REDIS_URL", "SAUVE_REDIS_PASSWORD"), doc["metadata"]["name"]
            assert "value" not in e or not any(s in e["value"] for s in secrets)


def all_template_jobs(docs):
    jobs = []
    for cm in restore_templates(docs):
        for key in cm["data"]:
            jobs.append(template_job(docs, key))
    return jobs


def test_redis_password_and_tls_files(helm):
    docs, _ = helm(EVERYTHING)
    objects = index_objects(stand_ins(docs))
    spec = run_spec(one(docs, "CronJob"), objects)
    assert spec.file(spec.environ["SAUVE_REDIS_PASSWORD_FILE"]) == b"redis-pw"
    assert "SAUVE_REDIS_URL_FILE" not in spec.environ  # the URL is in config.yaml: it holds no password
    assert yaml.safe_load(spec.file("/etc/sauve/config.yaml"))["redis"]["url"] == \
        "rediss://backup@redis-master.app.svc:6380"
    tls = {"SAUVE_REDIS_TLS_CA_FILE": b"CA", "SAUVE_REDIS_TLS_CERT_FILE": b"CRT", "SAUVE_REDIS_TLS_KEY_FILE": b"KEY"}
    for env, content in tls.items():
        path = spec.environ[env]
        assert spec.file(path) == content, env
        m = spec.mount_for(path)
        assert m.read_only and m.kind == "secret" and m.source == "redis-client-tls"
        assert m.files[path.rsplit("/", 1)[1]][1] == 0o440
    # the CA alone
    docs, _ = helm(SOURCES)
    env = {e["name"] for e in pod_of(one(docs, "CronJob"))["containers"][0]["env"]}
    assert "SAUVE_REDIS_TLS_CA_FILE" in env and "SAUVE_REDIS_TLS_CERT_FILE" not in env


def test_existing_secret_keys_for_redis(helm, tmp_path):
    v = write_values(tmp_path, """
config: {storage: 's3://b/p'}
secret:
  existingSecret: app-redis
  keys: {redisUrl: url, redisPassword: ""}
""")
    docs, _ = helm(v)
    creds = {"kind": "Secret", "metadata": {"name": "app-redis"}, "stringData": {"url": REDIS_URL}}
    spec = run_spec(one(docs, "CronJob"), index_objects(docs + [creds]))
    assert spec.file(spec.environ["SAUVE_REDIS_URL_FILE"]) == REDIS_URL.encode()
    assert "SAUVE_REDIS_PASSWORD_FILE" not in spec.environ
    assert "restore-redis-online" in restore_templates(docs)[0]["data"]


# --- the trees: read-only in the backups, read-write in their restore Job only -----------


@pytest.mark.parametrize("values", [SOURCES, EVERYTHING])
def test_trees_are_read_only_in_the_backups_and_the_check(helm, values):
    docs, _ = helm(values)
    with open(values) as f:
        trees = yaml.safe_load(f)["config"]["files"]["trees"]
    objects = index_objects(stand_ins(docs))
    for kind in ("CronJob", "Pod"):
        doc = one(docs, kind)
        mounts = claim_mounts(pod_of(doc))
        for t in trees:
            assert mounts[t["path"]] == (t["claimName"], True, True), (kind, t)
        spec = run_spec(doc, objects)
        for t in trees:
            m = spec.mount_for(t["path"] + "/x")
            assert m.read_only and m.kind == "persistentVolumeClaim" and m.sub_path == t.get("subPath", "")
        # nothing writable but /tmp (and the extra volume that says so)
        assert {m.path for m in spec.mounts if not m.read_only} <= {"/tmp", "/scratch"}


def test_each_tree_restore_job_mounts_its_tree_read_write_alone(sources):
    for name, path, claim in (("uploads", "/data/uploads", "app-uploads"), ("media", "/data/media", "app-media")):
        for key, extra in ((f"restore-files-{name}", ["--yes"]),
                           (f"restore-files-{name}-clean", ["--clean", "--confirm", path])):
            job = template_job(sources, key, ID="f1", SET="20261122T020000Z-482a3f91")
            pod = pod_of(job)
            assert pod["containers"][0]["args"] == [
                "restore", f"files:{name}", "--set", "20261122T020000Z-482a3f91", "--to", path, *extra]
            assert claim_mounts(pod) == {path: (claim, False, False)}, key
            # the application is scaled down while it runs: no affinity to it
            assert "podAffinity" not in (pod.get("affinity") or {})
            assert job["metadata"]["name"] == "sauve-restore-f1"
            assert check([job]) == []
    # the database and Redis restores mount no tree
    for key in ("restore", "restore-clean", "restore-redis-online", "restore-redis-online-clean"):
        assert claim_mounts(pod_of(template_job(sources, key))) == {}, key


def test_tree_restore_runs_as_the_application(helm, tmp_path):
    v = write_values(tmp_path, "restore:\n  files: {runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000}\n")
    docs, _ = helm(SOURCES, v)
    spec = run_spec(template_job(docs, "restore-files-uploads-clean"), index_objects(stand_ins(docs)))
    assert (spec.user, spec.group, spec.fs_group) == (1000, 1000, 1000) and spec.run_as_non_root
    # the backups keep the image's user; without restore.files, so do the restores
    assert run_spec(one(docs, "CronJob"), index_objects(stand_ins(docs))).user == 65532
    docs, _ = helm(SOURCES)
    assert run_spec(template_job(docs, "restore-files-uploads"), index_objects(stand_ins(docs))).user == 65532


def test_supplemental_groups_reach_the_backup_pod(sources):
    assert pod_of(one(sources, "CronJob"))["securityContext"]["supplementalGroups"] == [1000]


# --- ReadWriteOnce: the backup pod runs beside the application's ------------------------


def required_terms(pod):
    return ((pod.get("affinity") or {}).get("podAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")


def test_pod_affinity_from_the_selector(sources):
    app_pod_labels = {"app.kubernetes.io/name": "app", "pod-template-hash": "abc"}
    for kind in ("CronJob", "Pod"):
        terms = required_terms(pod_of(one(sources, kind)))
        assert terms == [{"labelSelector": {"matchLabels": {"app.kubernetes.io/name": "app"}},
                          "topologyKey": "kubernetes.io/hostname"}], kind
        assert selector_matches(terms[0]["labelSelector"], app_pod_labels)
        assert not selector_matches(terms[0]["labelSelector"], {"app.kubernetes.io/name": "redis"})
    for job in all_template_jobs(sources):
        assert required_terms(pod_of(job)) is None


def test_pod_affinity_joins_the_users_affinity(helm):
    docs, _ = helm(EVERYTHING)
    aff = pod_of(one(docs, "CronJob"))["affinity"]
    assert "nodeAffinity" in aff
    assert aff["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 10
    (term,) = aff["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/instance", "operator": "In", "values": ["app-prod"]}]
    assert selector_matches(term["labelSelector"], {"app.kubernetes.io/name": "app", "app.kubernetes.io/component": "web",
                                                    "app.kubernetes.io/instance": "app-prod"})
    assert not selector_matches(term["labelSelector"], {"app.kubernetes.io/name": "app",
                                                        "app.kubernetes.io/component": "web",
                                                        "app.kubernetes.io/instance": "app-staging"})
    # the restore Jobs keep the user's affinity alone
    job = template_job(docs, "restore-files-invoices")
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod_of(job)["affinity"]["podAffinity"]


def test_no_affinity_without_a_selector(helm, tmp_path):
    v = write_values(tmp_path, "config:\n  files:\n    trees: [{name: x, path: /x, claimName: x}]\n")
    docs, _ = helm(v)
    assert "affinity" not in pod_of(one(docs, "CronJob"))
    assert claim_mounts(pod_of(one(docs, "CronJob"))) == {"/x": ("x", True, True)}


# --- Redis' restores ---------------------------------------------------------------------


def test_redis_restore_jobs(sources, helm):
    online = pod_of(template_job(sources, "restore-redis-online", SET="s1"))
    assert online["containers"][0]["args"] == ["restore", "redis:sessions", "--set", "s1", "--online", "--yes"]
    assert claim_mounts(online) == {}
    clean = pod_of(template_job(sources, "restore-redis-online-clean"))
    # replacing data: the server named again, by whoever fills the template
    assert clean["containers"][0]["args"][-3:] == ["--clean", "--confirm", "@SERVER@"]
    for key, extra in (("restore-redis-file", ["--yes"]),
                       ("restore-redis-file-clean", ["--clean", "--confirm", "/data/dump.rdb"])):
        job = template_job(sources, key, ID="r2")
        pod = pod_of(job)
        assert pod["containers"][0]["args"] == [
            "restore", "redis:sessions", "--set", "latest", "--to-file", "/data/dump.rdb", *extra]
        assert claim_mounts(pod) == {"/data": ("redis-data-redis-master-0", False, False)}
        spec = run_spec(job, index_objects(stand_ins(sources)))
        assert (spec.user, spec.group, spec.fs_group) == (999, 999, 999)
        assert spec.run_as_non_root and spec.read_only_root
        assert check([job]) == []
    # the restore Job's ids given (everything-on: 1001, group 0), or none under OpenShift
    docs, _ = helm(EVERYTHING)
    pod = pod_of(template_job(docs, "restore-redis-file"))
    assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(pod["securityContext"])
    # (and everything-on's extraVolumes claim, read-only in every pod)
    assert claim_mounts(pod) == {"/data": ("redis-data-redis-master-0", False, False),
                                 "/data/uploads": ("app-uploads", True, True)}


def test_redis_file_restore_ids(helm, tmp_path):
    v = write_values(tmp_path, "restore:\n  redis: {runAsUser: 1001, runAsGroup: 0, fsGroup: 1001}\n")
    docs, _ = helm(SOURCES, v)
    spec = run_spec(template_job(docs, "restore-redis-file"), index_objects(stand_ins(docs)))
    assert (spec.user, spec.group, spec.fs_group) == (1001, 0, 1001)


def test_no_redis_or_tree_templates_without_them(helm, tmp_path):
    docs, _ = helm(example("restore-role-values.yaml"))
    assert sorted(restore_templates(docs)[0]["data"]) == ["restore", "restore-clean"]
    # Redis without restore.redis.claimName: online only
    docs, _ = helm(SOURCES, write_values(tmp_path, "restore: {redis: {claimName: ''}}\n"))
    keys = sorted(restore_templates(docs)[0]["data"])
    assert "restore-redis-online" in keys and "restore-redis-file" not in keys


# --- the NetworkPolicy ---------------------------------------------------------------------


def egress_ports(docs):
    np = one(docs, "NetworkPolicy")
    return [(r["to"], [p["port"] for p in r["ports"]]) for r in np["spec"]["egress"]]


def test_network_policy_egress_to_redis(sources, helm, tmp_path):
    redis_peer = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "redis"}}}]
    # the URL is in the Secret: the default port
    assert (redis_peer, [6379]) in egress_ports(sources)
    # config.redis.url's port; networkPolicy.redis.port over it
    docs, _ = helm(EVERYTHING)
    assert (redis_peer, [6380]) in egress_ports(docs)
    for url, port in (("redis://r.app.svc:7000", 7000), ("redis://redis1", 6379), ("redis://[fd00::1]:7001/0", 7001),
                      ("rediss://backup@redis-0.redis:6390/2", 6390)):
        v = write_values(tmp_path, f"secret: {{values: {{redisUrl: ''}}}}\nconfig: {{redis: {{url: '{url}'}}}}\n")
        assert schema_errors(helm(SOURCES, v, dump_values=True)) == [], url
        docs, _ = helm(SOURCES, v)
        assert (redis_peer, [port]) in egress_ports(docs), url
        assert check(docs) == []


def test_redis_alone_needs_no_database_rule(helm, tmp_path):
    v = write_values(tmp_path, """
config: {storage: 'file:///x', redis: {url: 'redis://r:6379'}}
networkPolicy: {enabled: true, redis: {to: [{podSelector: {matchLabels: {app: redis}}}]}}
""")
    docs, _ = helm(v)
    assert [ports for _, ports in egress_ports(docs)] == [[53, 53], [6379]]
    notes = helm(v, notes=True)
    assert "sauve backs up Redis r:6379 (redis:default) to file:///x" in notes


@pytest.mark.parametrize("values, message", [
    ("config: {redis: {url: 'redis://r:6379'}}\nnetworkPolicy: {enabled: true, database: {to: [{podSelector: {}}]}}\n",
     "networkPolicy.enabled with Redis (config.redis) needs networkPolicy.redis.to"),
    ("config: {redis: {url: 'redis://r:6379'}}\nsecret: {values: {redisUrl: 'redis://u:p@r:6379'}}\n",
     "config.redis.url and the redisUrl credential are the same setting"),
    ("secret: {values: {redisPassword: secret-pw}}\n", "a redisPassword credential without a Redis"),
    ("config: {redis: {url: 'rediss://r:6379', tls: {existingSecret: t, certKey: tls.crt}}}\n",
     "a client certificate needs its key"),
    ("config:\n  files:\n    trees: [{name: a, path: /a, claimName: a}, {name: a, path: /b, claimName: b}]\n",
     "the tree name a is given twice"),
    ("config:\n  files:\n    trees: [{name: a, path: /a, claimName: a}, {name: b, path: /a, claimName: b}]\n",
     "the path /a is given twice"),
])
def test_mistakes_stop_the_render(helm, tmp_path, values, message):
    with pytest.raises(RenderError) as e:
        helm(write_values(tmp_path, values))
    assert message in str(e.value)


@pytest.mark.parametrize("values, path", [
    ("config: {redis: {url: 'redis://user:pw@r:6379'}}\n", "$.config.redis.url"),
    ("config: {redis: {url: 'http://r:6379'}}\n", "$.config.redis.url"),
    ("config:\n  files:\n    trees: [{name: Uploads, path: /a, claimName: a}]\n", "$.config.files.trees[0].name"),
    ("config:\n  files:\n    trees: [{name: a, path: relative, claimName: a}]\n", "$.config.files.trees[0].path"),
    ("config:\n  files:\n    trees: [{name: a, path: /a}]\n", "$.config.files.trees[0]"),
    ("config:\n  files:\n    trees: ['a=/a']\n", "$.config.files.trees[0]"),
    ("config:\n  files:\n    unreadable: skip\n", "$.config.files.unreadable"),
    ("restore:\n  redis: {runAsUser: 0}\n", "$.restore.redis.runAsUser"),
])
def test_schema_refuses(helm, tmp_path, values, path):
    errs = schema_errors(helm(write_values(tmp_path, values), dump_values=True))
    assert any(e.startswith(path + ":") for e in errs), errs


# --- several targets --------------------------------------------------------------------------


def test_targets_each_their_own_sources(helm, tmp_path):
    v = write_values(tmp_path, """
config: {storage: 's3://b/p'}
secret: {values: {awsAccessKeyId: AK, awsSecretAccessKey: SK}}
targets:
  app:
    config:
      pg: {host: db, databases: [app]}
      files:
        trees: [{name: uploads, path: /data/uploads, claimName: app-uploads}]
        affinity: {matchLabels: {app: web}}
  cache:
    config:
      redis: {url: 'redis://backup@redis.app.svc:6379'}
    secret: {values: {redisPassword: cache-pw}}
    restore: {redis: {claimName: redis-data}}
""")
    docs, _ = helm(v)
    crons = {d["metadata"]["labels"]["sauve/target"]: d for d in docs if d["kind"] == "CronJob"}
    assert claim_mounts(pod_of(crons["app"])) == {"/data/uploads": ("app-uploads", True, True)}
    assert required_terms(pod_of(crons["app"]))[0]["labelSelector"] == {"matchLabels": {"app": "web"}}
    assert claim_mounts(pod_of(crons["cache"])) == {} and "affinity" not in pod_of(crons["cache"])
    objects = index_objects(docs)
    cache = run_spec(crons["cache"], objects)
    assert cache.file(cache.environ["SAUVE_REDIS_PASSWORD_FILE"]) == b"cache-pw"
    assert "SAUVE_REDIS_PASSWORD_FILE" not in run_spec(crons["app"], objects).environ
    cfgs = {c["metadata"]["name"]: yaml.safe_load(c["data"]["config.yaml"]) for c in configs(docs)}
    assert cfgs["sauve-app"]["files"] == {"trees": ["uploads=/data/uploads"]} and "redis" not in cfgs["sauve-app"]
    assert cfgs["sauve-cache"]["redis"] == {"url": "redis://backup@redis.app.svc:6379"}
    assert "files" not in cfgs["sauve-cache"]
    templates = {t["metadata"]["name"]: sorted(t["data"]) for t in restore_templates(docs)}
    assert templates["sauve-app-restore"] == ["restore", "restore-clean", "restore-files-uploads",
                                              "restore-files-uploads-clean"]
    assert templates["sauve-cache-restore"] == ["restore", "restore-clean", "restore-redis-file",
                                                "restore-redis-file-clean", "restore-redis-online",
                                                "restore-redis-online-clean"]
    assert check(docs + all_template_jobs_of(docs)) == []


def all_template_jobs_of(docs):
    jobs = []
    for cm in restore_templates(docs):
        for key, text in cm["data"].items():
            text = text.replace("@ID@", cm["metadata"]["name"][:6] + key[-4:]).replace("@SET@", "latest")
            jobs += load_docs(text.replace("@SOURCE@", "postgres:app").replace("@TARGET@", "app_check"))
    # each id its own: the Jobs of one template share a name pattern
    for i, j in enumerate(jobs):
        j["metadata"]["name"] = j["metadata"]["name"][:55] + f"-{i}"
    return jobs


# --- NOTES.txt ----------------------------------------------------------------------------------


def test_notes_commands_for_trees_and_redis_run(helm, tmp_path):
    """Each restore command NOTES.txt prints for a tree and for Redis, run
    with the real kubectl (jsonpath) and sed: the Job it would create."""
    docs, _ = helm(SOURCES)
    notes = helm(SOURCES, notes=True)
    assert "sauve backs up PostgreSQL app-db-rw.app.svc (app), Redis (URL in the Secret) (redis:sessions)" in notes
    found = re.findall(r"kubectl get configmap -n (\S+) (\S+) -o jsonpath='(\{\.data\.restore-(?:files|redis)[^']+)' \\\n"
                       r"\s+\| (sed [^|\n]+) \| kubectl create -n (\S+) -f -\n", notes)
    keys = [j[2] for j in found]
    assert keys == ["{.data.restore-files-uploads-clean}", "{.data.restore-files-media-clean}",
                    "{.data.restore-redis-online}", "{.data.restore-redis-file-clean}"], notes
    cm_file = tmp_path / "cm.yaml"
    for ns, cm_name, jsonpath, sed, create_ns in found:
        assert ns == create_ns == "backups"
        cm_file.write_text(yaml.safe_dump(one(docs, "ConfigMap", cm_name)))
        r = subprocess.run([k8s_tool("kubectl"), "annotate", "--local", "-f", str(cm_file), "sauve/test=1",
                            "-o", f"jsonpath={jsonpath}"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        r = subprocess.run(shlex.split(sed), input=r.stdout, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert "@" not in re.sub(r"[\w.+-]+@[\w.-]+", "", r.stdout)
        job = one(load_docs(r.stdout), "Job")
        assert check([job]) == []
        assert "--clean" in job["spec"]["template"]["spec"]["containers"][0]["args"] or "online" in jsonpath
    assert "scale the application down first" in notes and "scale Redis to 0" in notes


# --- Kustomize: components/redis and components/files (overlays/sources) ------------------------


def test_kustomize_sources_overlay():
    import os

    docs, _ = kustomize(os.path.join(KUSTOMIZE, "overlays", "sources"))
    cj = one(docs, "CronJob", "sauve")
    spec = run_spec(cj, index_objects(docs))
    # Redis: the URL is a file of the generated Secret, never a value
    with open(os.path.join(KUSTOMIZE, "overlays", "sources", "credentials", "redis-url"), "rb") as f:
        assert spec.file(spec.environ["SAUVE_REDIS_URL_FILE"]) == f.read()
    assert "SAUVE_REDIS_URL" not in spec.environ and spec.environ["SAUVE_REDIS_NAME"] == "sessions"
    # the tree: read-only, its claim read-only, where SAUVE_FILES says
    assert spec.environ["SAUVE_FILES"] == "uploads=/data/uploads"
    m = spec.mount_for("/data/uploads/x")
    assert m.kind == "persistentVolumeClaim" and m.source == "app-uploads" and m.read_only
    assert claim_mounts(pod_of(cj)) == {"/data/uploads": ("app-uploads", True, True)}
    assert {m.path for m in spec.mounts if not m.read_only} == {"/tmp"}
    (term,) = required_terms(pod_of(cj))
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert selector_matches(term["labelSelector"], {"app.kubernetes.io/name": "app"})
    assert check(docs) == []


def test_kustomize_restore_files_overlay():
    """overlays/restore-files: the restore Job of the tree, filled in as its
    comment says: the claim read-write in that Job only, no affinity to the
    application (scaled down meanwhile), the CronJob's mount still read-only."""
    import os

    from conftest import fill_restore

    docs, text = kustomize(os.path.join(KUSTOMIZE, "overlays", "restore-files"))
    assert "@" in one(docs, "Job")["metadata"]["name"]  # unfilled: refused by the API server
    filled = load_docs(fill_restore(text, ID="f3", SET="20261122T020000Z-482a3f91"))
    job = one(filled, "Job", "sauve-restore-f3")
    pod = pod_of(job)
    assert pod["containers"][0]["args"] == ["restore", "files:uploads", "--set", "20261122T020000Z-482a3f91",
                                           "--to", "/data/uploads", "--clean", "--confirm", "/data/uploads"]
    assert claim_mounts(pod) == {"/data/uploads": ("app-uploads", False, False)}
    assert required_terms(pod) is None
    assert claim_mounts(pod_of(one(filled, "CronJob"))) == {"/data/uploads": ("app-uploads", True, True)}
    assert required_terms(pod_of(one(filled, "CronJob")))
    spec = run_spec(job, index_objects(filled + [user_made_secret()]))
    assert not spec.mount_for("/data/uploads/x").read_only
    assert check(filled) == []


def test_kustomize_restore_redis_overlay():
    """overlays/restore-redis: the online restore Job, with the backups' Redis
    URL file and no volume of its own."""
    import os

    from conftest import fill_restore

    docs, text = kustomize(os.path.join(KUSTOMIZE, "overlays", "restore-redis"))
    filled = load_docs(fill_restore(text, ID="r4", SET="latest"))
    job = one(filled, "Job", "sauve-restore-r4")
    assert pod_of(job)["containers"][0]["args"] == ["restore", "redis:sessions", "--set", "latest", "--online",
                                                    "--yes"]
    spec = run_spec(job, index_objects(filled + [user_made_secret()]))
    assert spec.file(spec.environ["SAUVE_REDIS_URL_FILE"]).startswith(b"redis://")
    assert {m.path for m in spec.mounts if not m.read_only} == {"/tmp"}
    assert check(filled) == []
