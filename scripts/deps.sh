#!/usr/bin/env bash
# Installs the Debian 12 packages Portolan needs, only those that are missing.
#   scripts/deps.sh          build and run dependencies
#   scripts/deps.sh --test   also what the tests and benchmarks drive (skopeo, podman, buildah,
#                            containerd, the reference registry, load generators, clang-format,
#                            python3-h2 for the raw HTTP/2 client of the hostile-client test; gdb for the
#                            thread stacks of a node that never became ready;
#                            mmdebstrap, runc, netavark, aardvark-dns, podman-compose and
#                            docker-compose (schema check only) for the container image and the
#                            compose demo: deploy/image.sh, test_image, test_compose; for the
#                            Kubernetes tests kubectl (kubernetes-client, unless a kubectl is
#                            already installed), Node.js and npm, then the npm packages of
#                            tests/k8s with `npm ci`)
set -euo pipefail

pkgs=(build-essential cmake pkg-config libuv1-dev libh2o-dev librocksdb-dev libraft-dev
      libssl-dev libprotobuf-c-dev protobuf-c-compiler libjansson-dev libyaml-dev
      libcurl4-openssl-dev libcrypt-dev curl)
if [ "${1:-}" = "--test" ]; then
    pkgs+=(libcmocka-dev python3 python3-h2 skopeo podman buildah containerd docker-registry wrk hey openssl
           clang-format jq clang libclang-rt-14-dev mmdebstrap runc netavark aardvark-dns
           podman-compose docker-compose gdb)
    command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
    command -v node >/dev/null || pkgs+=(nodejs)
    command -v npm >/dev/null || pkgs+=(npm)
fi

# The npm packages tests/k8s/validate.mjs uses, as tests/k8s/package-lock.json pins them.
npm_ci() {
    [ "${1:-}" = "--test" ] || return 0
    local dir
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/k8s"
    [ -d "$dir/node_modules/kubernetes-models" ] && [ -d "$dir/node_modules/yaml" ] && return 0
    echo "deps: npm ci in tests/k8s"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    npm_ci "${1:-}"
    exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
npm_ci "${1:-}"
