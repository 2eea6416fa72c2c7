#!/usr/bin/env bash
# local-cluster.sh - run a multi-region Portolan cluster on this machine, for development.
#
#   deploy/local-cluster.sh up     [--regions N] [--dir DIR] [--build-dir DIR] [--timeout SECONDS]
#                                  [--client-port BASE] [--raft-port BASE]
#   deploy/local-cluster.sh down   [--dir DIR] [--purge]
#   deploy/local-cluster.sh status [--dir DIR] [--build-dir DIR]
#
# up writes DIR/cluster.yaml for N regions (default 3) named region-a, region-b, ...: region i
# has raft id i, its Raft + peer port on 127.0.0.1:(7000+i) and its clients on
# http://127.0.0.1:(5000+i) (other bases with --raft-port and --client-port). It starts one
# `portolan serve` per region in the background (DIR/<region>/data, log in
# DIR/<region>/node.log, pid in DIR/<region>/pid), builds the binary first with `make build`
# if BUILD-DIR/portolan is missing, then waits (default 30 s) until `portolan cluster status`
# reports a leader and prints each region's URL. Running it again starts only the regions that
# are not running, with the settings the cluster was created with. The regions and ports of
# a cluster cannot change while it has data (use `down --purge` first): its Raft state
# remembers them.
#
# The regions' Raft + peer port runs TLS 1.3 with mutual authentication: up makes a cluster CA
# and a certificate per region under DIR/certs with `portolan cluster certs` (once; regions
# added later get theirs signed by the same CA) and starts every region with --peer-tls-cert,
# --peer-tls-key and --peer-tls-ca.
#
# down stops the regions (SIGTERM, then SIGKILL after 10 s) and keeps their data unless
# --purge is given. status lists the regions' processes and the cluster's own view.
#
# Access control is on: up makes one administrator password for the cluster in
# DIR/admin-password (mode 0600, once), starts every region with
# --initial-admin-password-file on it, and prints the login command; up and status use it for
# their own admin requests. PORTOLAN_AUTH=off in the environment starts the regions with
# --auth off instead (loopback development and benchmarks).
# Relative DIR and BUILD-DIR are taken from the repository root (defaults .local-cluster and
# build). Exit status: 0 ok, 1 failure (a node died, no leader in time, ...), 2 usage.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

CLIENT_BASE=5000
RAFT_BASE=7000
MAX_REGIONS=64
STOP_WAIT=10

usage() {
    sed -n '2,24s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

die() {
    echo "local-cluster: $*" >&2
    exit 1
}

usage_error() {
    echo "local-cluster: $*" >&2
    echo "usage: deploy/local-cluster.sh up|down|status [flags] (--help for details)" >&2
    exit 2
}

# ---- arguments ------------------------------------------------------------------------------

[ $# -ge 1 ] || usage_error "missing command"
cmd=$1
shift
case "$cmd" in
up | down | status) ;;
-h | --help | help)
    usage
    exit 0
    ;;
*) usage_error "unknown command '$cmd'" ;;
esac

regions=""
client_port=""
raft_port=""
dir=".local-cluster"
build_dir="build"
timeout=30
purge=0
while [ $# -gt 0 ]; do
    flag=$1
    case "$flag" in
    --*=*)
        value=${flag#*=}
        flag=${flag%%=*}
        shift
        ;;
    --purge | -h | --help)
        value=""
        shift
        ;;
    --*)
        [ $# -ge 2 ] || usage_error "$flag: missing value"
        value=$2
        shift 2
        ;;
    *) usage_error "unexpected argument '$flag'" ;;
    esac
    case "$cmd:$flag" in
    *:-h | *:--help)
        usage
        exit 0
        ;;
    up:--regions) regions=$value ;;
    up:--client-port) client_port=$value ;;
    up:--raft-port) raft_port=$value ;;
    *:--dir) dir=$value ;;
    up:--build-dir | status:--build-dir) build_dir=$value ;;
    up:--timeout) timeout=$value ;;
    down:--purge) purge=1 ;;
    *) usage_error "$cmd: unknown flag '$flag'" ;;
    esac
done

if [ -n "$regions" ]; then
    if ! [[ $regions =~ ^[0-9]{1,2}$ ]] || [ "$regions" -lt 1 ] || [ "$regions" -gt $MAX_REGIONS ]; then
        usage_error "--regions: expected 1..$MAX_REGIONS, got '$regions'"
    fi
fi
for p in "$client_port" "$raft_port"; do
    if [ -n "$p" ] && { ! [[ $p =~ ^[0-9]{1,5}$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt $((65535 - MAX_REGIONS)) ]; }; then
        usage_error "--client-port/--raft-port: expected 1..$((65535 - MAX_REGIONS)), got '$p'"
    fi
done
if ! [[ $timeout =~ ^[0-9]{1,5}$ ]] || [ "$timeout" -lt 1 ]; then
    usage_error "--timeout: expected seconds (1..99999), got '$timeout'"
fi
[ -n "$dir" ] || usage_error "--dir: must not be empty"
[ -n "$build_dir" ] || usage_error "--build-dir: must not be empty"

case "$dir" in /*) ;; *) dir="$root/$dir" ;; esac
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac
dir=${dir%/}
bin="$build_dir/portolan"
cluster_file="$dir/cluster.yaml"
certs_dir="$dir/certs"
password_file="$dir/admin-password"
auth=${PORTOLAN_AUTH:-on}
err_file="" # stderr of the last status probe (up); removed on exit
n=0           # number of regions, and the port bases (load_settings)
client_base=$CLIENT_BASE
raft_base=$RAFT_BASE

# ---- regions --------------------------------------------------------------------------------

# region_name I -> region-a .. region-z, region-aa, region-ab, ...
region_name() {
    local i=$(($1 - 1)) letters=abcdefghijklmnopqrstuvwxyz
    if [ "$i" -lt 26 ]; then
        echo "region-${letters:i:1}"
    else
        echo "region-${letters:i/26-1:1}${letters:i%26:1}"
    fi
}

client_url() { echo "http://127.0.0.1:$((client_base + $1))"; }
raft_address() { echo "127.0.0.1:$((raft_base + $1))"; }

# The settings an existing cluster file was written with, as "N CLIENT_BASE RAFT_BASE";
# nothing if there is no such file.
existing_settings() {
    [ -f "$cluster_file" ] || return 0
    sed -n 's/^# local-cluster: regions=\([0-9]*\) client-port=\([0-9]*\) raft-port=\([0-9]*\)$/\1 \2 \3/p' \
        "$cluster_file" | head -n 1
}

# Sets n, client_base and raft_base: flags first, then the existing cluster, then defaults.
load_settings() {
    local have_n="" have_c="" have_r=""
    read -r have_n have_c have_r < <(existing_settings) || true
    n=${regions:-${have_n:-3}}
    client_base=${client_port:-${have_c:-$CLIENT_BASE}}
    raft_base=${raft_port:-${have_r:-$RAFT_BASE}}
}

# The cluster file for n regions, on stdout.
cluster_yaml() {
    local i
    echo "# Written by deploy/local-cluster.sh: a $n-region cluster on this machine."
    echo "# local-cluster: regions=$n client-port=$client_base raft-port=$raft_base"
    echo "cluster_id: portolan-local"
    echo "regions:"
    for ((i = 1; i <= n; i++)); do
        echo "  - name: $(region_name "$i")"
        echo "    id: $i"
        echo "    address: $(raft_address "$i")"
        echo "    url: $(client_url "$i")"
        echo "    role: voter"
    done
}

# pid of the region's node if it runs, else nothing (exit 1). A pid file whose process is
# gone, or is some other program after pid reuse, does not count.
node_pid() {
    local region=$1 pidfile="$dir/$1/pid" pid
    [ -f "$pidfile" ] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--data-dir $dir/$region/data " ||
        return 1
    echo "$pid"
}

log_tail() {
    local log="$dir/$1/node.log"
    if [ -s "$log" ]; then
        echo "--- last lines of $log:" >&2
        tail -n 15 "$log" >&2
    fi
}

# Regions that have a directory under DIR (running or not), one a line.
known_regions() {
    local d
    for d in "$dir"/*/; do
        [ -d "$d" ] || continue
        d=${d%/}
        [ -d "$d/data" ] || [ -f "$d/pid" ] || [ -f "$d/node.log" ] || continue
        basename "$d"
    done
}

# ---- up -------------------------------------------------------------------------------------

start_region() {
    local i=$1 region pid
    region=$(region_name "$i")
    if pid=$(node_pid "$region"); then
        echo "$region: already running (pid $pid)"
        return 0
    fi
    mkdir -p "$dir/$region/data"
    echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) local-cluster.sh starting $region" >>"$dir/$region/node.log"
    # setsid: the node gets its own session, so ^C on this script does not reach it.
    setsid "$bin" serve \
        --listen "127.0.0.1:$((client_base + i))" \
        --data-dir "$dir/$region/data" \
        --region "$region" \
        --cluster-file "$cluster_file" \
        --peer-tls-cert "$certs_dir/$region.pem" \
        --peer-tls-key "$certs_dir/$region-key.pem" \
        --peer-tls-ca "$certs_dir/ca.pem" \
        "${auth_args[@]}" \
        </dev/null >>"$dir/$region/node.log" 2>&1 &
    echo $! >"$dir/$region/pid"
    echo "$region: started (pid $!), $(client_url "$i"), raft $(raft_address "$i")"
}

# Makes DIR/admin-password once (auth on) and sets auth_args and the credentials this script's
# own admin requests use (PORTOLAN_USER / PORTOLAN_PASSWORD, read by the portolan client).
auth_args=()
setup_auth() {
    case "$auth" in
    off)
        auth_args=(--auth off)
        return 0
        ;;
    on) ;;
    *) die "PORTOLAN_AUTH must be on or off, not '$auth'" ;;
    esac
    if [ ! -s "$password_file" ]; then
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$password_file.tmp") &&
            mv -f "$password_file.tmp" "$password_file" ||
            die "cannot write $password_file"
    fi
    auth_args=(--auth on --initial-admin-password-file "$password_file")
    export PORTOLAN_USER=admin
    PORTOLAN_PASSWORD=$(cat "$password_file")
    export PORTOLAN_PASSWORD
}

# Makes DIR/certs: the cluster CA once, then a certificate for every region that has none.
make_certs() {
    local i region missing=""
    for ((i = 1; i <= n; i++)); do
        region=$(region_name "$i")
        [ -f "$certs_dir/$region.pem" ] || missing="$missing${missing:+,}$region"
    done
    [ -n "$missing" ] || return 0
    if [ -f "$certs_dir/ca.pem" ]; then
        "$bin" cluster certs --out "$certs_dir" --ca "$certs_dir" --regions "$missing" >/dev/null
    else
        "$bin" cluster certs --out "$certs_dir" --regions "$missing" >/dev/null
    fi || die "cannot make the peer TLS certificates in $certs_dir"
    echo "peer TLS certificates for $missing in $certs_dir"
}

# Fails if a port of a region that is not running already accepts connections: the node
# would die at once, or worse, status would read some other cluster.
check_ports() {
    local i region port
    for ((i = 1; i <= n; i++)); do
        region=$(region_name "$i")
        node_pid "$region" >/dev/null && continue
        for port in $((client_base + i)) $((raft_base + i)); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                die "$region: port $port on 127.0.0.1 is taken by another program; pick other ports with --client-port/--raft-port (after 'down --purge' if $dir has data)"
            fi
        done
    done
}

# Fails (with the node's log) if a region's process has exited.
check_alive() {
    local i region
    for ((i = 1; i <= n; i++)); do
        region=$(region_name "$i")
        if ! node_pid "$region" >/dev/null; then
            echo "local-cluster: $region exited" >&2
            log_tail "$region"
            return 1
        fi
    done
}

# Prints the leader's name once `portolan cluster status` reports one.
leader_of() {
    awk '$2 ~ /^[0-9]+$/ && $3 == "leader" { print $1; found = 1; exit } END { exit !found }'
}

# Explains, after the wait for a leader timed out, what was (not) working.
explain_no_leader() {
    local last_out=$1 last_err=$2 i region url
    echo "local-cluster: no leader after ${timeout}s." >&2
    for ((i = 1; i <= n; i++)); do
        region=$(region_name "$i")
        url=$(client_url "$i")
        if curl -fsS -m 2 -o /dev/null "$url/healthz" 2>/dev/null; then
            echo "  $region: serving on $url (/healthz ok)" >&2
        else
            echo "  $region: not answering on $url/healthz (see $dir/$region/node.log)" >&2
        fi
    done
    if [ -n "$last_out" ]; then
        echo "  the cluster's own view:" >&2
        printf '%s\n' "$last_out" | sed 's/^/    /' >&2
    fi
    if [ -n "$last_err" ]; then
        echo "  last 'portolan cluster status' error: $last_err" >&2
        case "$last_err" in
        *"HTTP 404"*)
            echo "  The nodes run but do not serve the cluster admin API (/admin/cluster):" >&2
            echo "  this build runs each region standalone, without Raft." >&2
            ;;
        esac
    fi
    echo "  The nodes are left running; stop them with: deploy/local-cluster.sh down" >&2
}

cmd_up() {
    local i out last_out="" last_err="" leader deadline
    load_settings
    mkdir -p "$dir"
    cluster_yaml >"$cluster_file.tmp"
    if [ -f "$cluster_file" ] && ! cmp -s "$cluster_file.tmp" "$cluster_file" &&
        [ -n "$(known_regions)" ]; then
        rm -f "$cluster_file.tmp"
        die "$dir holds a cluster with other settings ($(existing_settings | awk '{ printf "regions=%s client-port=%s raft-port=%s", $1, $2, $3 }')); run 'deploy/local-cluster.sh down --purge' first"
    fi

    if [ ! -x "$bin" ]; then
        echo "local-cluster: $bin is missing, building it (make build BUILD=$build_dir)"
        make -C "$root" build BUILD="$build_dir"
        [ -x "$bin" ] || die "the build did not produce $bin"
    fi

    if cmp -s "$cluster_file.tmp" "$cluster_file"; then
        rm -f "$cluster_file.tmp"
    else
        mv -f "$cluster_file.tmp" "$cluster_file"
        echo "wrote $cluster_file ($n regions)"
    fi

    make_certs
    setup_auth
    check_ports
    for ((i = 1; i <= n; i++)); do
        start_region "$i"
    done
    # A node that refuses its configuration exits at once: report it before waiting.
    sleep 0.5
    check_alive || die "a region failed to start; fix the cause and run 'up' again"

    echo "waiting up to ${timeout}s for a leader ..."
    err_file=$(mktemp)
    trap 'rm -f "$err_file"' EXIT
    deadline=$((SECONDS + timeout))
    leader=""
    while [ $SECONDS -lt $deadline ]; do
        for ((i = 1; i <= n; i++)); do
            if out=$("$bin" cluster status --region "$(client_url "$i")" --timeout 2s 2>"$err_file"); then
                last_out=$out
                last_err=""
                leader=$(printf '%s\n' "$out" | leader_of) && break 2
                leader=""
                break
            fi
            last_err=$(head -n 3 "$err_file")
        done
        check_alive || die "a region exited while waiting for a leader"
        sleep 0.5
    done
    if [ -z "$leader" ]; then
        explain_no_leader "$last_out" "$last_err"
        exit 1
    fi

    echo "leader: $leader"
    printf '%s\n' "$last_out"
    echo
    for ((i = 1; i <= n; i++)); do
        printf '%-10s %s\n' "$(region_name "$i")" "$(client_url "$i")"
    done
    if [ "$auth" = on ]; then
        echo
        echo "access control is on; the administrator is 'admin', its password is in $password_file:"
        echo "  skopeo login --tls-verify=false -u admin --password-stdin 127.0.0.1:$((client_base + 1)) <$password_file"
        echo "  export PORTOLAN_USER=admin PORTOLAN_PASSWORD=\$(cat $password_file)   # for portolan user/token/cluster ..."
    fi
}

# ---- down -----------------------------------------------------------------------------------

cmd_down() {
    local region pid pids=() names=() waited=0 k
    while read -r region; do
        [ -n "$region" ] || continue
        if pid=$(node_pid "$region"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$region")
        else
            rm -f "$dir/$region/pid"
        fi
    done < <(known_regions)

    while [ ${#pids[@]} -gt 0 ] && [ "$waited" -lt $((STOP_WAIT * 10)) ]; do
        local alive=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ "$alive" -eq 1 ] || break
        sleep 0.1
        waited=$((waited + 1))
    done
    for k in "${!pids[@]}"; do
        if kill -0 "${pids[k]}" 2>/dev/null; then
            echo "${names[k]}: still running after ${STOP_WAIT}s, sending SIGKILL"
            kill -KILL "${pids[k]}" 2>/dev/null || true
        fi
        rm -f "$dir/${names[k]}/pid"
        echo "${names[k]}: stopped"
    done
    [ ${#pids[@]} -gt 0 ] || echo "no region is running"

    if [ "$purge" -eq 1 ] && [ -d "$dir" ]; then
        # Only a directory this script made: it holds the cluster file or nothing else.
        if [ -f "$cluster_file" ] || [ -z "$(ls -A "$dir")" ]; then
            rm -rf -- "$dir"
            echo "removed $dir"
        else
            die "$dir has no cluster.yaml; not removing it"
        fi
    fi
}

# ---- status ---------------------------------------------------------------------------------

cmd_status() {
    local region pid any=0 running=0 stopped=0 url="" i
    [ -f "$cluster_file" ] || {
        echo "no cluster in $dir (run: deploy/local-cluster.sh up)"
        return 1
    }
    [ -n "$(existing_settings)" ] || die "$cluster_file was not written by this script"
    load_settings
    if [ -s "$password_file" ]; then
        export PORTOLAN_USER=admin
        PORTOLAN_PASSWORD=$(cat "$password_file")
        export PORTOLAN_PASSWORD
    fi
    for ((i = 1; i <= n; i++)); do
        region=$(region_name "$i")
        any=1
        if pid=$(node_pid "$region"); then
            printf '%-10s running  pid %-8s %s\n' "$region" "$pid" "$(client_url "$i")"
            running=$((running + 1))
            [ -n "$url" ] || url=$(client_url "$i")
        else
            printf '%-10s stopped  %-12s %s\n' "$region" "" "$(client_url "$i")"
            stopped=$((stopped + 1))
        fi
    done
    [ "$any" -eq 1 ] || echo "no regions in $cluster_file"
    if [ -n "$url" ] && [ -x "$bin" ]; then
        echo
        "$bin" cluster status --region "$url" || true
    fi
    [ "$stopped" -eq 0 ] && [ "$running" -gt 0 ]
}

case "$cmd" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
esac
