#!/usr/bin/env bash
# make-secrets.sh - the Secrets the Portolan StatefulSet mounts: the administrator's password
# (portolan-admin, key "password") and the peer port's mutual TLS (portolan-peer-tls, keys
# ca.crt and <region>.crt / <region>.key for every region it covers).
#
#   deploy/k8s/make-secrets.sh [--replicas N | --regions a,b,c] [--out DIR] [--ca-dir DIR]
#                              [--admin-password-file FILE] [--https-cert FILE --https-key FILE]
#                              [--trust CA.pem] [--portolan BIN] [--apply [--namespace NS]]
#
# Regions: portolan-0 .. portolan-(N-1) for the pods of the StatefulSet (--replicas, default
# 5: every pod the StatefulSet may be scaled to needs its key in the Secret beforehand), or
# the names given with --regions (one region per Kubernetes cluster in the multi-region
# layout: each cluster gets only its own key).
#
# Writes into DIR (default: deploy/k8s/secrets, which deploy/k8s/kustomization.yaml reads):
#   DIR/peer-tls/ca.crt, DIR/peer-tls/<region>.crt, DIR/peer-tls/<region>.key
#   DIR/admin/password      (random, 24 bytes base64, unless --admin-password-file)
#   DIR/https/tls.crt, tls.key (only with --https-cert/--https-key: the Secret portolan-https
#                           of the multi-region layout, where the pods serve HTTPS)
#   DIR/kustomization.yaml  (a secretGenerator for kustomize: `kubectl apply -k` on the
#                           kustomization that lists DIR next to the base)
# The cluster CA (ca.pem, ca-key.pem) is kept in --ca-dir (default DIR/ca), never in a
# Secret: it signs regions added later (run again with more --replicas and the same
# --ca-dir) and should then be moved offline. Certificates come from
# `portolan cluster certs`. Running again keeps every file that exists and adds what is
# missing; delete a file to replace it (deploy/README.md, rotating certificates). --trust
# appends the certificates of CA.pem to ca.crt: the pods then accept peers signed by either
# CA, the middle steps of replacing the cluster CA.
#
# --apply sends the two (or three) Secrets straight to the cluster (kubectl apply, namespace
# NS or kubectl's current one) instead of leaving them to kustomize; then apply the
# manifests with `kubectl apply -k deploy/k8s/base`.
#
# Exit status: 0 ok, 1 failure, 2 usage error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
replicas=5
regions=""
out="$here/secrets"
ca_dir=""
admin_file=""
https_cert=""
https_key=""
trust=""
portolan=""
apply=0
namespace=""

usage() { sed -n '2,35s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
die() { echo "make-secrets: $*" >&2; exit 1; }
usage_error() { echo "make-secrets: $*" >&2; echo "usage: make-secrets.sh [flags] (--help)" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
    --replicas | --regions | --out | --ca-dir | --admin-password-file | --https-cert | \
        --https-key | --trust | --portolan | --namespace)
        [ $# -ge 2 ] || usage_error "$1 needs a value"
        case "$1" in
        --replicas) replicas=$2 ;;
        --regions) regions=$2 ;;
        --out) out=$2 ;;
        --ca-dir) ca_dir=$2 ;;
        --admin-password-file) admin_file=$2 ;;
        --https-cert) https_cert=$2 ;;
        --https-key) https_key=$2 ;;
        --trust) trust=$2 ;;
        --portolan) portolan=$2 ;;
        --namespace) namespace=$2 ;;
        esac
        shift 2
        ;;
    --apply) apply=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
    esac
done

case "$replicas" in '' | *[!0-9]*) usage_error "--replicas: want 1..64" ;; esac
[ "$replicas" -ge 1 ] && [ "$replicas" -le 64 ] || usage_error "--replicas: want 1..64"
if { [ -n "$https_cert" ] && [ -z "$https_key" ]; } || { [ -z "$https_cert" ] && [ -n "$https_key" ]; }; then
    usage_error "--https-cert and --https-key go together"
fi
if [ -z "$regions" ]; then
    regions=$(seq -s, -f 'portolan-%g' 0 $((replicas - 1)))
fi
case ",$regions," in *[!a-z0-9,-]* | *,,*) usage_error "--regions: names of [a-z0-9-], comma-separated" ;; esac
[ -n "$namespace" ] && [ "$apply" = 0 ] && usage_error "--namespace goes with --apply"

if [ -z "$portolan" ]; then
    if command -v portolan >/dev/null; then
        portolan=portolan
    elif [ -x "$here/../../build/portolan" ]; then
        portolan="$here/../../build/portolan"
    else
        die "no portolan binary: install it, or pass --portolan BIN"
    fi
fi
[ -n "$ca_dir" ] || ca_dir="$out/ca"

umask 077
mkdir -p "$out/peer-tls" "$out/admin" "$ca_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- the cluster CA and the regions' certificates ------------------------------------------
missing=""
IFS=, read -r -a names <<<"$regions"
for r in "${names[@]}"; do
    [ -f "$out/peer-tls/$r.crt" ] && [ -f "$out/peer-tls/$r.key" ] && continue
    rm -f "$out/peer-tls/$r.crt" "$out/peer-tls/$r.key"
    missing="${missing:+$missing,}$r"
done
if [ -n "$missing" ]; then
    if [ -f "$ca_dir/ca.pem" ]; then
        "$portolan" cluster certs --out "$work/certs" --regions "$missing" --ca "$ca_dir" >/dev/null
    else
        [ ! -e "$ca_dir/ca-key.pem" ] || die "$ca_dir/ca-key.pem without ca.pem"
        "$portolan" cluster certs --out "$work/certs" --regions "$missing" >/dev/null
        cp "$work/certs/ca.pem" "$work/certs/ca-key.pem" "$ca_dir/"
        echo "make-secrets: new cluster CA in $ca_dir (keep ca-key.pem offline once done)"
    fi
    IFS=, read -r -a made <<<"$missing"
    for r in "${made[@]}"; do
        cp "$work/certs/$r.pem" "$out/peer-tls/$r.crt"
        cp "$work/certs/$r-key.pem" "$out/peer-tls/$r.key"
    done
    echo "make-secrets: peer certificates for $missing"
fi
cp "$ca_dir/ca.pem" "$out/peer-tls/ca.crt"
if [ -n "$trust" ]; then
    grep -q 'BEGIN CERTIFICATE' "$trust" || die "--trust: no certificate in $trust"
    cat "$trust" >>"$out/peer-tls/ca.crt"
fi

# ---- the administrator's password ----------------------------------------------------------
if [ -n "$admin_file" ]; then
    head -c 1025 "$admin_file" | tr -d '\r\n' >"$out/admin/password"
    [ -s "$out/admin/password" ] || die "$admin_file is empty"
elif [ ! -s "$out/admin/password" ]; then
    head -c 24 /dev/urandom | base64 | tr -d '\n/+=' >"$out/admin/password"
    echo "make-secrets: new administrator password in $out/admin/password"
fi

# ---- the client port's certificate (multi-region layout) -----------------------------------
if [ -n "$https_cert" ]; then
    mkdir -p "$out/https"
    cp "$https_cert" "$out/https/tls.crt"
    cp "$https_key" "$out/https/tls.key"
fi

# ---- kustomize input, or straight to the cluster -------------------------------------------
# Every region file the directory holds, so that a run for more regions keeps the others.
tls_files=$(cd "$out/peer-tls" && ls -1 | LC_ALL=C sort)
{
    echo "# Made by deploy/k8s/make-secrets.sh: the Secrets of the Portolan StatefulSet."
    echo "# Not to be committed: it names private keys and a password in this directory."
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "generatorOptions:"
    echo "  labels:"
    echo "    app.kubernetes.io/name: portolan"
    echo "secretGenerator:"
    echo "  - name: portolan-admin"
    echo "    files:"
    echo "      - password=admin/password"
    echo "  - name: portolan-peer-tls"
    echo "    files:"
    for f in $tls_files; do echo "      - peer-tls/$f"; done
    if [ -f "$out/https/tls.crt" ]; then
        echo "  - name: portolan-https"
        echo "    type: kubernetes.io/tls"
        echo "    files:"
        echo "      - https/tls.crt"
        echo "      - https/tls.key"
    fi
} >"$out/kustomization.yaml"

if [ "$apply" = 1 ]; then
    ns=()
    [ -z "$namespace" ] || ns=(--namespace "$namespace")
    kubectl create secret generic portolan-admin "${ns[@]}" \
        --from-file=password="$out/admin/password" --dry-run=client -o yaml | kubectl apply "${ns[@]}" -f -
    kubectl create secret generic portolan-peer-tls "${ns[@]}" \
        --from-file="$out/peer-tls" --dry-run=client -o yaml | kubectl apply "${ns[@]}" -f -
    if [ -f "$out/https/tls.crt" ]; then
        kubectl create secret tls portolan-https "${ns[@]}" --cert="$out/https/tls.crt" \
            --key="$out/https/tls.key" --dry-run=client -o yaml | kubectl apply "${ns[@]}" -f -
    fi
fi
echo "make-secrets: $out/kustomization.yaml"
