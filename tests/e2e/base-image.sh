#!/usr/bin/env bash
# Build (once) the local Debian base image the e2e example image starts FROM.
#
#   tests/e2e/base-image.sh            print the tag, building the image when it is missing
#
# Why: base images cannot be pulled on CI (no registry access), and RUN steps inside
# `podman build` have no network. So the base is a `debootstrap --variant=minbase`
# rootfs that already holds every runtime package the example needs (PostgreSQL,
# Redis, Python, procps), imported with `podman import`. The Dockerfile on top of it
# only COPYs and configures. The tag carries a hash of the package list and of this
# script, so changing either builds a new base; an existing one is reused (~70-200 s
# saved per run).
#
# Env: BOSUN_E2E_MIRROR (default: the first URI of /etc/apt/sources.list.d/debian.sources,
# else http://deb.debian.org/debian), BOSUN_E2E_ROOTFS (reuse an already debootstrapped
# directory instead of making one: for development).
set -euo pipefail

# Runtime packages of docker/example (keep in sync with docker/Dockerfile's apt-get line).
PACKAGES=postgresql,redis-server,python3,python3-psycopg2,procps,ca-certificates

here=$(cd "$(dirname "$0")" && pwd)
hash=$( { echo "$PACKAGES"; cat "$here/base-image.sh"; } | sha256sum | cut -c1-12)
TAG=localhost/bosun-e2e-base:bookworm-$hash

# On a machine that never ran the e2e: podman (with netavark, see install.sh) and debootstrap.
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || [[ ! -x /usr/lib/podman/netavark ]]; then
    "$here/../support/install.sh" e2e
fi

if podman image exists "$TAG"; then
    echo "$TAG"
    exit 0
fi

mirror=${BOSUN_E2E_MIRROR:-}
if [[ -z $mirror && -f /etc/apt/sources.list.d/debian.sources ]]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [[ -z $mirror && -f /etc/apt/sources.list ]]; then
    mirror=$(awk '$1 == "deb" && $2 ~ /^https?:/ && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

command -v debootstrap >/dev/null || {
    echo "base-image.sh: debootstrap missing (apt-get install debootstrap)" >&2
    exit 1
}

work=$(mktemp -d /tmp/bosun-e2e-base.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

if [[ -n ${BOSUN_E2E_ROOTFS:-} ]]; then
    rootfs=$BOSUN_E2E_ROOTFS
else
    rootfs=$work/rootfs
    echo "base-image.sh: debootstrap bookworm from $mirror (once; cached as $TAG)" >&2
    nice debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1 || {
        tail -30 "$work/debootstrap.log" >&2
        exit 1
    }
fi

# Slim it down: package caches, docs, man pages and locales are not needed at run
# time (~200 MB). Debian's postinst also made a cluster in /var/lib/postgresql/15/main;
# the example runs its own (initdb on first boot, into its own PGDATA), so drop it
# rather than ship a cluster that nobody uses.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
    "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
rm -rf "$rootfs"/var/lib/postgresql/15/main "$rootfs"/etc/postgresql/15/main
# debootstrap copies the host's resolv.conf/hostname; the container engine provides them.
: >"$rootfs/etc/resolv.conf"
rm -f "$rootfs/etc/hostname"

echo "base-image.sh: importing $TAG" >&2
tar -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$TAG" >/dev/null
echo "$TAG"
