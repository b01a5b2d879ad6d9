#!/usr/bin/env bash
# Makes the image `edgegap-test-debian:bookworm`: a minimal Debian root filesystem built with
# debootstrap, a stand-in for the Debian/Ubuntu-based images Unity and Unreal Linux servers ship
# in. No registry is needed: the rootfs comes from the Debian package mirror that apt already
# uses, and is imported with `docker import`.
#
# The rootfs tarball is cached (target/debian-rootfs/ by default, or $1), so only the first run
# downloads anything; a run with the image already present does nothing. Concurrent runs (tests
# in parallel) serialise on a lock. Needs root (debootstrap); installs debootstrap if missing.
#
#   docker/debian-rootfs.sh [CACHE_DIR]
#   DEBIAN_MIRROR=http://deb.debian.org/debian  overrides the mirror taken from apt's sources
set -euo pipefail

image=${EDGEGAP_TEST_DEBIAN_IMAGE:-edgegap-test-debian:bookworm}
suite=bookworm
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-$root/target/debian-rootfs}
tarball=$cache/$suite-minbase.tar

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if docker image inspect "$image" >/dev/null 2>&1; then
    exit 0
fi

# The first Debian (not -security) mirror in apt's sources, deb822 or one-line format.
apt_mirror() {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null |
        grep -oE '(https?)://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' ||
        true
}

if [ ! -s "$tarball" ]; then
    if ! command -v debootstrap >/dev/null; then
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >"$cache/apt.log" 2>&1 ||
            { cat "$cache/apt.log" >&2; exit 1; }
    fi
    mirror=${DEBIAN_MIRROR:-$(apt_mirror)}
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    echo "debian-rootfs: debootstrap --variant=minbase $suite from $mirror" >&2
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
        tail -n 30 "$cache/debootstrap.log" >&2
        exit 1
    }
    # Drop the package caches: they are not part of what a server image ships.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
fi

docker import --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null
echo "debian-rootfs: imported $image from $tarball" >&2
