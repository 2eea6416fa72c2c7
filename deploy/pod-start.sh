#!/bin/sh
# pod-start.sh - the command of a Portolan StatefulSet's pods (installed in the image as
# /usr/libexec/portolan/pod-start); README.md "Running in Kubernetes".
#
# Role: turns the pod's identity into a region and starts `portolan serve` for it.
#   HOSTNAME = <set>-<ordinal>  ->  region name = $HOSTNAME, Raft id = ordinal + 1.
#   - ordinal < PORTOLAN_BOOTSTRAP_MEMBERS (default 3): the region is in the shared cluster
#     file (PORTOLAN_CLUSTER_FILE, the ConfigMap) and starts with it as it is;
#   - a higher ordinal is a region added to the running cluster: the script writes a copy of
#     the cluster file with its own entry appended (<data>/pod-cluster.yaml; address
#     $HOSTNAME.$PORTOLAN_PEER_DOMAIN:7000, url from PORTOLAN_URL_TEMPLATE or
#     http://$HOSTNAME.$PORTOLAN_PEER_DOMAIN:5000), starts `portolan serve --join true`, and a
#     background loop adds it through the leader (`portolan cluster add --region
#     $PORTOLAN_JOIN_VIA`, as PORTOLAN_USER with the password in PORTOLAN_PASSWORD_FILE) every
#     few seconds until the cluster lists it. The leader then sends it a snapshot and the log
#     after it; its /readyz turns 200 once it has applied what the leader had committed.
#   Peer TLS: PORTOLAN_PEER_TLS_DIR (the Secret: ca.crt, <region>.crt, <region>.key for every
#   ordinal) gives --peer-tls-cert/-key/-ca, unless that directory does not exist.
#
# Design:
#   - Signals: the script ends by exec'ing `portolan serve`, so the node is the pod's main
#     process and receives SIGTERM itself (README "Stopping a region"). The adder loop is a
#     child of it after the exec; the node never waits for it, so once the loop ends it stays
#     a zombie until the pod stops (one, harmless).
#   - Removal (scaling down): `portolan cluster remove --id <ordinal+1>`, then the pod is
#     stopped. Once it was a member, the script leaves <data>/pod-joined; a pod that restarts
#     with that file and is not a member (it was removed) does NOT add itself again: it runs
#     as a region waiting to be added, which no member talks to, so it cannot disturb the
#     cluster (its messages are refused by every member's peer handshake) and stays unready.
#     Re-adding the same ordinal later needs either a fresh data volume (recommended:
#     persistentVolumeClaimRetentionPolicy whenScaled: Delete) or `rm <data>/pod-joined` on
#     the old one, after which it joins again and catches up from the leader's snapshot.
#   - Everything the script reads can be overridden, so it runs outside a container too
#     (tests/integration/test_self_join.py): PORTOLAN_BIN, PORTOLAN_DATA_DIR,
#     PORTOLAN_CLUSTER_FILE, PORTOLAN_PEER_TLS_DIR, PORTOLAN_PEER_ADDRESS_TEMPLATE and
#     PORTOLAN_URL_TEMPLATE (both with {hostname} and {ordinal} replaced),
#     PORTOLAN_JOIN_RETRY_SECONDS. Arguments after the script's name are passed to
#     `portolan serve` last (they win over everything).
#   - The variables only this script reads are unset before the exec, so the node never sees
#     them (and never sees the administrator's password).
#
# Environment (defaults): HOSTNAME (required), PORTOLAN_BOOTSTRAP_MEMBERS (3),
#   PORTOLAN_DATA_DIR (/var/lib/portolan), PORTOLAN_CLUSTER_FILE (/etc/portolan/cluster.yaml),
#   PORTOLAN_PEER_TLS_DIR (/etc/portolan/peer-tls), PORTOLAN_PEER_DOMAIN (needed to join
#   unless both templates are given), PORTOLAN_JOIN_VIA (client URL of any member; needed to
#   join), PORTOLAN_USER (admin), PORTOLAN_PASSWORD_FILE (needed to join).
set -eu

die() {
    echo "pod-start: $*" >&2
    exit 1
}

log() {
    echo "pod-start: $*" >&2
}

bin=${PORTOLAN_BIN:-/usr/bin/portolan}
# Kubernetes puts HOSTNAME (the pod name) in the environment; sh itself need not set it.
# shellcheck disable=SC3028
host=${HOSTNAME:-}
[ -n "$host" ] || die "HOSTNAME is not set (expected <statefulset>-<ordinal>)"
ordinal=${host##*-}
case $ordinal in
'' | *[!0-9]*) die "HOSTNAME $host does not end in -<ordinal>" ;;
esac
[ "${#ordinal}" -le 6 ] || die "ordinal $ordinal too large"
ordinal=$((ordinal + 0))
id=$((ordinal + 1))
bootstrap=${PORTOLAN_BOOTSTRAP_MEMBERS:-3}
case $bootstrap in
'' | *[!0-9]*) die "PORTOLAN_BOOTSTRAP_MEMBERS=$bootstrap is not a number" ;;
esac
data=${PORTOLAN_DATA_DIR:-/var/lib/portolan}
cluster_file=${PORTOLAN_CLUSTER_FILE:-/etc/portolan/cluster.yaml}
tls_dir=${PORTOLAN_PEER_TLS_DIR:-/etc/portolan/peer-tls}
domain=${PORTOLAN_PEER_DOMAIN:-}
retry=${PORTOLAN_JOIN_RETRY_SECONDS:-3}

# expand TEMPLATE: {hostname} and {ordinal} replaced
expand() {
    printf '%s\n' "$1" | sed -e "s/{hostname}/$host/g" -e "s/{ordinal}/$ordinal/g"
}

[ -r "$cluster_file" ] || die "cluster file $cluster_file is not readable"
mkdir -p "$data"

set -- --data-dir "$data" --region "$host" "$@"
if [ -d "$tls_dir" ]; then
    for f in ca.crt "$host.crt" "$host.key"; do
        [ -r "$tls_dir/$f" ] || die "peer TLS: $tls_dir/$f is missing (one per ordinal)"
    done
    set -- --peer-tls-cert "$tls_dir/$host.crt" --peer-tls-key "$tls_dir/$host.key" \
        --peer-tls-ca "$tls_dir/ca.crt" "$@"
fi

if [ "$ordinal" -lt "$bootstrap" ]; then
    log "region $host (id $id) is a bootstrap member"
    set -- --cluster-file "$cluster_file" "$@"
else
    if [ -n "${PORTOLAN_PEER_ADDRESS_TEMPLATE:-}" ]; then
        address=$(expand "$PORTOLAN_PEER_ADDRESS_TEMPLATE")
    else
        [ -n "$domain" ] || die "PORTOLAN_PEER_DOMAIN is not set"
        address="$host.$domain:7000"
    fi
    if [ -n "${PORTOLAN_URL_TEMPLATE:-}" ]; then
        url=$(expand "$PORTOLAN_URL_TEMPLATE")
    else
        [ -n "$domain" ] || die "PORTOLAN_PEER_DOMAIN is not set"
        url="http://$host.$domain:5000"
    fi
    join_via=${PORTOLAN_JOIN_VIA:-}
    [ -n "$join_via" ] || die "PORTOLAN_JOIN_VIA is not set (client URL of a member)"
    pw_file=${PORTOLAN_PASSWORD_FILE:-}
    if [ -z "$pw_file" ] || [ ! -r "$pw_file" ]; then
        die "PORTOLAN_PASSWORD_FILE is not readable"
    fi
    user=${PORTOLAN_USER:-admin}

    own="$data/pod-cluster.yaml"
    if grep -q "^ *- *name: *$host *\$" "$cluster_file"; then
        die "$host is already listed in $cluster_file: raise PORTOLAN_BOOTSTRAP_MEMBERS"
    fi
    {
        cat "$cluster_file"
        echo # the file may lack its last newline; its regions list must come last
        printf '  - name: %s\n    id: %s\n    address: %s\n    url: %s\n' \
            "$host" "$id" "$address" "$url"
    } >"$own.tmp"
    mv "$own.tmp" "$own"
    set -- --cluster-file "$own" --join true "$@"
    marker="$data/pod-joined"

    # is_member: the cluster (asked at $join_via) lists this region
    is_member() {
        PORTOLAN_USER=$user PORTOLAN_PASSWORD=$(cat "$pw_file") \
            "$bin" cluster status --region "$join_via" --json 2>/dev/null |
            grep -q "\"name\": *\"$host\""
    }

    if [ -e "$marker" ]; then
        log "region $host (id $id) was a member before; not adding it again" \
            "(it was removed unless the cluster still lists it; rm $marker to re-add)"
    else
        log "region $host (id $id) joins through $join_via as $address, $url"
        (
            trap - TERM INT
            sleep 1
            while :; do
                if is_member; then
                    : >"$marker"
                    log "region $host is a member"
                    exit 0
                fi
                if PORTOLAN_USER=$user PORTOLAN_PASSWORD=$(cat "$pw_file") \
                    "$bin" cluster add --region "$join_via" --name "$host" --id "$id" \
                    --address "$address" --url "$url" >/dev/null 2>&1; then
                    : >"$marker"
                    log "region $host added"
                    exit 0
                fi
                sleep "$retry"
            done
        ) </dev/null &
    fi
fi

unset PORTOLAN_BOOTSTRAP_MEMBERS PORTOLAN_PEER_DOMAIN PORTOLAN_URL_TEMPLATE PORTOLAN_JOIN_VIA \
    PORTOLAN_PASSWORD_FILE PORTOLAN_PASSWORD PORTOLAN_USER PORTOLAN_PEER_TLS_DIR \
    PORTOLAN_PEER_ADDRESS_TEMPLATE PORTOLAN_JOIN_RETRY_SECONDS PORTOLAN_BIN
exec "$bin" serve "$@"
