#!/usr/bin/env python3
"""Reads an OCI image archive (what `buildah push ... oci-archive:FILE` writes)
without a container engine: the index, the manifest, the config, and each
layer's files. Used by make image (the report), make image-repro (the
comparison) and the image tests (tests/image), which read the image's
configuration and file list from here, not from the Dockerfile.

    oci.py report ARCHIVE [--json FILE]   digests, sizes, layers, config
    oci.py compare ARCHIVE ARCHIVE        exit 1 and say which digest differs
    oci.py files ARCHIVE                  every path of the image's file system
"""

import gzip
import hashlib
import io
import json
import sys
import tarfile

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


class Image:
    """One image of an OCI archive: .index, .manifest, .config (parsed),
    .manifest_digest, .config_digest, .layers (the manifest's descriptors),
    .ref (the reference name the archive gives it), .archive_size."""

    def __init__(self, path, platform=None):
        self.path = path
        with tarfile.open(path) as t:
            self._members = {m.name.lstrip("./"): m for m in t.getmembers()}
        import os
        self.archive_size = os.path.getsize(path)
        self.index = json.loads(self.blob_file("index.json"))
        desc = self._pick(self.index, platform)
        self.ref = (desc.get("annotations") or {}).get("org.opencontainers.image.ref.name", "")
        self.manifest_digest = desc["digest"]
        raw = self.blob(desc["digest"])
        self.manifest = json.loads(raw)
        self.config_digest = self.manifest["config"]["digest"]
        self.config = json.loads(self.blob(self.config_digest))
        self.layers = self.manifest["layers"]

    def _pick(self, index, platform):
        """The manifest for platform ("linux/amd64"), following a nested
        index (a multi-arch image); the only one when platform is None."""
        manifests = index["manifests"]
        if len(manifests) == 1 and manifests[0]["mediaType"] == MEDIA_INDEX:
            return self._pick(json.loads(self.blob(manifests[0]["digest"])), platform)
        if platform:
            os_, arch = platform.split("/")[:2]
            manifests = [m for m in manifests if (m.get("platform") or {}).get("architecture", arch) == arch
                         and (m.get("platform") or {}).get("os", os_) == os_]
        if len(manifests) != 1:
            raise ValueError(f"{self.path}: {len(manifests)} manifests for {platform or 'any platform'}")
        if manifests[0]["mediaType"] != MEDIA_MANIFEST:
            raise ValueError(f"{self.path}: {manifests[0]['mediaType']} is not an OCI image manifest")
        return manifests[0]

    def blob_file(self, name):
        with tarfile.open(self.path) as t:
            return t.extractfile(self._members[name]).read()

    def blob(self, digest):
        """The blob's bytes, checked against its digest."""
        algo, hexd = digest.split(":", 1)
        data = self.blob_file(f"blobs/{algo}/{hexd}")
        if hashlib.new(algo, data).hexdigest() != hexd:
            raise ValueError(f"{self.path}: blob {digest} does not match its digest")
        return data

    def layer_tar(self, i):
        """Layer i, uncompressed (bytes)."""
        d = self.layers[i]
        data = self.blob(d["digest"])
        if d["mediaType"].endswith("+gzip"):
            return gzip.decompress(data)
        if d["mediaType"].endswith(".tar"):
            return data
        raise ValueError(f"layer {d['digest']}: media type {d['mediaType']} not read here")

    def diff_id(self, i):
        return "sha256:" + hashlib.sha256(self.layer_tar(i)).hexdigest()

    def entries(self, i):
        """Layer i's tar entries, in archive order: dicts of path (no
        leading ./ or /), type, mode, uid, gid, size, mtime, link, sha256."""
        out = []
        with tarfile.open(fileobj=io.BytesIO(self.layer_tar(i))) as t:
            for m in t.getmembers():
                e = {"path": m.name.lstrip("./").rstrip("/") if m.name not in (".", "./") else "",
                     "type": {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
                              tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}.get(m.type, repr(m.type)),
                     "mode": m.mode, "uid": m.uid, "gid": m.gid, "size": m.size, "mtime": m.mtime,
                     "link": m.linkname, "uname": m.uname, "gname": m.gname}
                if m.isfile():
                    e["sha256"] = hashlib.sha256(t.extractfile(m).read()).hexdigest()
                out.append(e)
        return out

    def files(self):
        """{path: entry} of the image's file system: the layers applied in
        order (whiteouts remove what earlier layers added)."""
        fs = {}
        for i in range(len(self.layers)):
            for e in self.entries(i):
                base = e["path"].rsplit("/", 1)[-1]
                if base.startswith(".wh."):
                    gone = e["path"][: -len(base)] + base[4:]
                    for p in [p for p in fs if p == gone or p.startswith(gone + "/")]:
                        del fs[p]
                    continue
                if e["path"]:
                    fs[e["path"]] = e
        return fs


def report(img):
    """The figures docs/image.md keeps, as a dict."""
    cfg = img.config
    layers = []
    for i, d in enumerate(img.layers):
        tar = img.layer_tar(i)
        entries = img.entries(i)
        layers.append({"digest": d["digest"], "media_type": d["mediaType"], "compressed": d["size"],
                       "uncompressed": len(tar), "diff_id": "sha256:" + hashlib.sha256(tar).hexdigest(),
                       "entries": len(entries),
                       "created_by": ""})
    history = [h for h in cfg.get("history", []) if not h.get("empty_layer")]
    for layer, h in zip(layers, history):
        layer["created_by"] = h.get("created_by", "")
    return {
        "archive": img.path, "archive_size": img.archive_size, "ref": img.ref,
        "platform": f"{cfg.get('os')}/{cfg.get('architecture')}",
        "manifest_digest": img.manifest_digest, "config_digest": img.config_digest,
        "diff_ids": cfg["rootfs"]["diff_ids"], "created": cfg.get("created"),
        "compressed_size": sum(l["compressed"] for l in layers) + img.manifest["config"]["size"],
        "uncompressed_size": sum(l["uncompressed"] for l in layers),
        "layers": layers,
        "config": {k: cfg.get("config", {}).get(k) for k in ("User", "Entrypoint", "Cmd", "Env", "WorkingDir", "Labels")},
    }


def mib(n):
    return f"{n / 1048576:.1f} MiB"


def print_report(r, out=sys.stdout):
    p = lambda s="": print(s, file=out)  # noqa: E731
    p(f"image      {r['ref']} ({r['platform']}), created {r['created']}")
    p(f"archive    {r['archive']} ({r['archive_size']} bytes)")
    p(f"manifest   {r['manifest_digest']}")
    p(f"config     {r['config_digest']}")
    for d in r["diff_ids"]:
        p(f"rootfs     {d}")
    p(f"compressed {r['compressed_size']} bytes ({mib(r['compressed_size'])}; layers and config, what a pull downloads)")
    p(f"unpacked   {r['uncompressed_size']} bytes ({mib(r['uncompressed_size'])}; the layers' tar streams)")
    for i, l in enumerate(r["layers"]):
        p(f"layer {i}    {l['digest']} {l['compressed']} bytes ({mib(l['compressed'])}) compressed, "
          f"{l['uncompressed']} ({mib(l['uncompressed'])}) as tar, {l['entries']} entries")
        p(f"           {l['created_by']}")
    for k, v in r["config"].items():
        p(f"{k:<10} {json.dumps(v)}")


def compare(a, b):
    """Which digests differ between two images, and for a differing layer,
    which of its entries: a list of lines, empty when they are the same."""
    diffs = []
    if a.manifest_digest != b.manifest_digest:
        diffs.append(f"manifest digest: {a.manifest_digest} != {b.manifest_digest}")
    if a.config_digest != b.config_digest:
        diffs.append(f"config digest: {a.config_digest} != {b.config_digest}")
        ca, cb = a.config, b.config
        for k in sorted(set(ca) | set(cb)):
            if ca.get(k) != cb.get(k):
                diffs.append(f"  config field {k!r}: {json.dumps(ca.get(k))[:300]} != {json.dumps(cb.get(k))[:300]}")
    da, db = a.config["rootfs"]["diff_ids"], b.config["rootfs"]["diff_ids"]
    if len(a.layers) != len(b.layers):
        diffs.append(f"layers: {len(a.layers)} != {len(b.layers)}")
    for i, (la, lb) in enumerate(zip(a.layers, b.layers)):
        if la["digest"] == lb["digest"]:
            continue
        same_rootfs = i < len(da) and i < len(db) and da[i] == db[i]
        diffs.append(f"layer {i}: compressed {la['digest']} != {lb['digest']}"
                     + (" (same rootfs digest: only the compression differs)" if same_rootfs else ""))
        if same_rootfs:
            continue
        diffs.append(f"layer {i}: rootfs digest {da[i] if i < len(da) else '-'} != {db[i] if i < len(db) else '-'}")
        ea = {e["path"]: e for e in a.entries(i)}
        eb = {e["path"]: e for e in b.entries(i)}
        order_a = [e for e in ea]
        order_b = [e for e in eb]
        for path in sorted(set(ea) | set(eb)):
            x, y = ea.get(path), eb.get(path)
            if x is None or y is None:
                diffs.append(f"  /{path}: only in {'the second' if x is None else 'the first'}")
            elif x != y:
                fields = [k for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
                diffs.append(f"  /{path}: " + ", ".join(f"{k} {x.get(k)!r} != {y.get(k)!r}" for k in fields))
        if set(ea) == set(eb) and order_a != order_b:
            diffs.append(f"  the entries are in another order")
    return diffs


def main(argv):
    if len(argv) >= 2 and argv[0] == "report":
        r = report(Image(argv[1]))
        if "--json" in argv:
            with open(argv[argv.index("--json") + 1], "w") as f:
                json.dump(r, f, indent=2)
        print_report(r)
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        diffs = compare(Image(argv[1]), Image(argv[2]))
        for d in diffs:
            print(d)
        if not diffs:
            a = Image(argv[1])
            print(f"same image: manifest {a.manifest_digest}, rootfs {', '.join(a.config['rootfs']['diff_ids'])}")
        return 1 if diffs else 0
    if len(argv) == 2 and argv[0] == "files":
        for path in sorted(Image(argv[1]).files()):
            print("/" + path)
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
