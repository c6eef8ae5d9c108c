#!/usr/bin/env bash
# Installs what the tests need on a machine that has never run them: idempotent (only
# what is missing is installed; a second run does nothing), and it stops at the first
# prerequisite that cannot be had, saying what and how to get it.
#
#   tests/support/install.sh tests    cargo test: PostgreSQL 15, supervisor, util-linux
#                                     (unshare, setpriv, runuser), procps, curl, python3
#                                     with prometheus_client, Chromium, Garage (S3), and
#                                     PyPI kubernetes-validate in a venv (tests/k8s.rs)
#   tests/support/install.sh e2e      tests/e2e/podman.sh: netavark + aardvark-dns, then
#                                     podman, runc, conmon, debootstrap, iptables,
#                                     slirp4netns; and podman's network backend is netavark
#   tests/support/install.sh all      both (tests/run.sh, before anything slow)
#
# Everything goes to stderr (base-image.sh prints its tag on stdout). Packages come from
# apt-get (root only). Garage: `cargo install --locked garage@2.5.0` into ~/.cargo/bin,
# once; when a `cargo install ... garage` is already running (another shell, another
# run) this waits for it instead of compiling it a second time next to it.
set -euo pipefail

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
    say "ERROR: $*"
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# apt_install PKG...: installs the packages in one transaction, or dies with apt's words.
apt_install() {
    (($#)) || return 0
    [[ $EUID -eq 0 ]] || die "missing packages: $*; run as root, or: sudo apt-get install $*"
    have apt-get || die "missing packages: $* (Debian names), and no apt-get to install them"
    say "apt-get install $*"
    local out
    out=$(mktemp /tmp/bosun-install.XXXXXX)
    # `update` only when an install fails for want of fresh lists: saves ~10 s per run
    # on a machine whose lists are current, and is what a clean machine needs anyway.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
        </dev/null >"$out" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >"$out" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
                </dev/null >"$out" 2>&1 || {
            tail -n 20 "$out" >&2
            rm -f "$out"
            die "apt-get install $* failed (above); install them by hand and rerun"
        }
    fi
    rm -f "$out"
}

tests_part() {
    local need=()
    [[ -x /usr/lib/postgresql/15/bin/postgres ]] || need+=(postgresql-15)
    have supervisord || need+=(supervisor)
    { have unshare && have setpriv && have runuser; } || need+=(util-linux)
    have ps || need+=(procps)
    have curl || need+=(curl)
    have python3 || need+=(python3)
    have chromium || need+=(chromium)
    apt_install "${need[@]}"
    # Debian starts a cluster on install; the tests run their own servers.
    if have pg_lsclusters && pg_lsclusters -h 2>/dev/null | grep -q online; then
        pg_ctlcluster 15 main stop 2>/dev/null || true
    fi
    # prometheus_client for the /metrics test, into whatever python3 is first on PATH
    # (pyenv's on some machines, so not the Debian package).
    if ! python3 -c 'import prometheus_client.parser' 2>/dev/null; then
        say "pip install prometheus_client"
        python3 -m pip install -q prometheus_client </dev/null >&2 2>&1 ||
            apt_install python3-prometheus-client
        python3 -c 'import prometheus_client.parser' 2>/dev/null ||
            die "python3 ($(command -v python3)) cannot import prometheus_client: pip install prometheus_client"
    fi
    garage_part
    k8s_part
}

# PyPI kubernetes-validate (the Kubernetes JSON schemas, and PyYAML) for tests/k8s.rs,
# in a venv of its own under the cache dir: Debian 12's python3 is "externally managed"
# (PEP 668), so `pip install` outside a venv needs --break-system-packages and would mix
# PyPI packages into the system's; a venv needs no root, is removed with one rm -rf, and
# pins the version. Debian's python3 has no ensurepip without python3-venv.
K8S_VALIDATE_VERSION=1.37.0
k8s_part() {
    local venv=${BOSUN_K8S_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/bosun/kubernetes-validate}
    if [[ $("$venv/bin/kubernetes-validate" --version 2>/dev/null) == "$K8S_VALIDATE_VERSION" ]]; then
        return 0
    fi
    python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
    say "pip install kubernetes-validate==$K8S_VALIDATE_VERSION into $venv"
    rm -rf "$venv"
    local out
    out=$(mktemp /tmp/bosun-install.XXXXXX)
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check \
        "kubernetes-validate==$K8S_VALIDATE_VERSION"; } </dev/null >"$out" 2>&1; then
        tail -n 20 "$out" >&2
        rm -f "$out"
        die "could not install kubernetes-validate into $venv (above; it needs PyPI): python3 -m venv $venv && $venv/bin/pip install kubernetes-validate==$K8S_VALIDATE_VERSION"
    fi
    rm -f "$out"
}

# The PIDs of running `cargo install ... garage...` processes (read only: nothing is
# signalled).
garage_builds() {
    pgrep -f '^[^ ]*cargo install .*garage' 2>/dev/null || true
}

garage_part() {
    local bin=$HOME/.cargo/bin/garage
    if have garage || [[ -x $bin ]]; then return 0; fi
    local others
    others=$(garage_builds)
    if [[ -n $others ]]; then
        # A build in progress installs $bin when it finishes; a second one would take
        # the same cores for the same ~20 min and then race it for the install.
        say "garage is being built by pid(s) $(echo $others) (cargo install); waiting for it (up to 60 min)"
        local deadline=$((SECONDS + 3600))
        while [[ -n $(garage_builds) && ! -x $bin ]]; do
            ((SECONDS < deadline)) || die "the garage build (pids $(echo $others)) still runs after 60 min"
            sleep 10
        done
        [[ -x $bin ]] && { say "garage is there: $bin"; return 0; }
        say "that build ended without installing $bin; building it here"
    fi
    have cargo || die "no cargo to build garage (https://rustup.rs), or put a garage 2.5 binary on PATH"
    say "cargo install --locked garage@2.5.0 (once, ~20 min on 2 cores; cached in ~/.cargo/bin)"
    local log
    log=$(mktemp /tmp/bosun-garage-install.XXXXXX)
    nice cargo install --locked garage@2.5.0 </dev/null >"$log" 2>&1 || {
        tail -n 30 "$log" >&2
        die "cargo install --locked garage@2.5.0 failed (log $log)"
    }
    rm -f "$log"
}

# podman's network backend (netavark or cni); its stderr instead when podman fails.
# (Not 2>&1: podman warns on stderr about CNI files it cannot use, e.g. the
# 87-podman-bridge.conflist that Debian's containers-common ships.)
network_backend() {
    local err out
    err=$(mktemp /tmp/bosun-install.XXXXXX)
    if out=$(podman info --format '{{.Host.NetworkBackend}}' 2>"$err" </dev/null); then
        rm -f "$err"
        echo "$out"
    else
        tail -n 5 "$err"
        rm -f "$err"
        return 1
    fi
}

e2e_part() {
    [[ $EUID -eq 0 ]] || die "the podman e2e needs root (rootful podman, debootstrap)"
    # netavark and aardvark-dns first, in the same transaction as podman at the latest:
    # podman picks its network backend at its first use and keeps it. Without netavark
    # then it is CNI (apt's other provider of container-network-stack), and CNI without
    # the dnsname plugin gives containers on a network no names to resolve each other by.
    local need=()
    [[ -x /usr/lib/podman/netavark ]] || need+=(netavark)
    [[ -x /usr/lib/podman/aardvark-dns ]] || need+=(aardvark-dns)
    have podman || need+=(podman)
    have runc || need+=(runc)            # crun fails on these hosts' cgroups: --runtime runc
    have conmon || need+=(conmon)
    have debootstrap || need+=(debootstrap)
    have iptables || need+=(iptables)    # netavark's firewall driver
    have slirp4netns || need+=(slirp4netns)
    apt_install "${need[@]}"

    local backend
    backend=$(network_backend) || die "podman does not work: podman info: $backend"
    [[ $backend == netavark ]] && return 0

    # Podman chose CNI at its first use (before netavark was installed) and kept that.
    # The documented switch is containers.conf's network_backend, with every container
    # stopped (containers.conf(5)); unlike `podman system reset` it keeps the images
    # (the debootstrapped e2e base among them).
    local running
    running=$(podman ps -q 2>/dev/null)
    local fix="stop every podman container, then either set network_backend = \"netavark\" under [network] in /etc/containers/containers.conf, or run \`podman system reset -f\` (deletes ALL podman containers, images, volumes and networks), and rerun"
    [[ -z $running ]] ||
        die "podman uses the '$backend' network backend (chosen before netavark was installed), and containers run ($(echo $running)): $fix"
    local conf=/etc/containers/containers.conf.d/50-bosun-netavark.conf
    say "podman uses the '$backend' network backend (chosen before netavark was installed; no DNS between containers): switching it to netavark in $conf (no container runs; images are kept)"
    mkdir -p "$(dirname "$conf")"
    printf '# Written by bosun tests/support/install.sh: podman had chosen %s at its first use,\n# before netavark was installed. Remove this file to go back.\n[network]\nnetwork_backend = "netavark"\n' \
        "$backend" >"$conf"
    backend=$(network_backend) || true
    [[ $backend == netavark ]] ||
        die "podman still uses the '$backend' network backend after writing $conf: $fix"
}

case ${1:-} in
tests) tests_part ;;
e2e) e2e_part ;;
all)
    tests_part
    e2e_part
    ;;
*)
    echo "usage: $0 tests|e2e|all" >&2
    exit 2
    ;;
esac
