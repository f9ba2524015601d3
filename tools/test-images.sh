#!/usr/bin/env bash
#===----------------------------------------------------------------------===//
#
# This source file is part of the liverelay open source project
#
# Copyright (c) 2026 the liverelay project authors
# Licensed under Apache License v2.0
#
# SPDX-License-Identifier: Apache-2.0
#
#===----------------------------------------------------------------------===//
#
# Builds the runtime stage of Dockerfile.relay and Dockerfile.operator with buildah (no Docker engine, no image
# pulled) and runs what is inside: the base is a minimal Debian bookworm made with debootstrap (cached in
# .build-images/), the binary is the one built on this host (swift build, or $LIVERELAY_BINARY). Then, in each
# image: `liverelay --help` and its subcommands' --help, no shell present, the non-root user; in the relay image
# the relay is started with examples/relay.yaml and must answer /healthz and /readyz. Buildah's storage is private
# to .build-images/ and removed at the end; nothing is left running or mounted. Needs root (debootstrap, chroot).
#
# Usage: tools/test-images.sh [--keep-storage]
set -euo pipefail

keep=false
while [[ $# -gt 0 ]]; do
    case $1 in
        --keep-storage) keep=true ;;
        -h|--help) sed -n '13,21p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "test-images.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

need() {
    command -v "$1" > /dev/null 2>&1 || {
        echo "test-images.sh: $1 is needed to $2 but is not installed (Debian package $3)" >&2
        exit 1
    }
}
need buildah "build and run the images" buildah
need debootstrap "make the base image" debootstrap
need curl "probe the relay's /healthz" curl
need ldd "find the Swift runtime libraries of the binary" libc-bin
if [[ $(id -u) != 0 ]]; then
    echo "test-images.sh: must run as root (debootstrap and buildah's chroot isolation need it)" >&2
    exit 1
fi

script_dir=${BASH_SOURCE[0]%/*}
[[ $script_dir == "${BASH_SOURCE[0]}" ]] && script_dir=.
cd "$script_dir/.."
root=$(pwd)
work="$root/.build-images"
mkdir -p "$work"
start=$SECONDS
log() { echo "test-images.sh: [$((SECONDS - start)) s] $*"; }

storage=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
bah() { buildah "${storage[@]}" "$@"; }
relay_group=""
cleanup() {
    local status=$?
    if [[ -n $relay_group ]] && kill -0 -- "-$relay_group" 2> /dev/null; then
        kill -KILL -- "-$relay_group" 2> /dev/null || true
    fi
    if [[ -d $work/storage ]]; then
        bah rm --all > /dev/null 2>&1 || true
        bah unmount --all > /dev/null 2>&1 || true
        if [[ $keep == false ]]; then
            bah rmi --all --force > /dev/null 2>&1 || true
            rm -rf "$work/storage" "$work/run"
        fi
    fi
    rm -rf "$work/context"
    exit "$status"
}
trap cleanup EXIT

# 1. The binary built on this host, and the Swift runtime libraries it links from the toolchain.
if [[ -n ${LIVERELAY_BINARY:-} ]]; then
    binary=$LIVERELAY_BINARY
else
    need swift "build liverelay" "(the Swift toolchain)"
    log "building liverelay on the host"
    swift build --product liverelay > "$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
    binary="$(swift build --show-bin-path)/liverelay"
fi
[[ -x $binary ]] || { echo "test-images.sh: no liverelay executable at $binary" >&2; exit 1; }
rm -rf "$work/context"
mkdir -p "$work/context/swift-lib"
cp "$binary" "$work/context/liverelay"
# Libraries outside the system's directories come from the toolchain: the image needs them beside the binary.
while read -r lib; do
    case $lib in
        /lib/*|/lib64/*|/usr/lib/*|/usr/lib64/*) ;;
        *) cp -L "$lib" "$work/context/swift-lib/" ;;
    esac
done < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
log "binary $binary with $(find "$work/context/swift-lib" -type f | wc -l) toolchain libraries"

# 2. The base: debootstrap's minimal bookworm with the relay's libraries, cached as a tarball.
packages="ca-certificates,libavformat59,libavcodec59,libavutil57"
base_tar="$work/base-bookworm-$(echo "$packages" | cksum | cut -d' ' -f1).tar"
if [[ ! -f $base_tar ]]; then
    log "debootstrapping a minimal bookworm with $packages (cached in $base_tar)"
    rm -rf "$work/base.partial"
    debootstrap --variant=minbase --include="$packages" bookworm "$work/base.partial" \
        "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    rm -rf "$work/base.partial/var/cache/apt/archives/"*.deb "$work/base.partial/var/lib/apt/lists/"*
    tar -C "$work/base.partial" -cf "$base_tar.partial" .
    mv "$base_tar.partial" "$base_tar"
    rm -rf "$work/base.partial"
fi
log "importing the base"
base=$(bah from scratch)
bah add --quiet "$base" "$base_tar" / > /dev/null
bah commit --quiet "$base" localhost/liverelay-test-base:bookworm > /dev/null
bah rm "$base" > /dev/null

# 3. Build each image's runtime stage from the base and the prebuilt binary, nothing pulled.
build() {
    local dockerfile=$1 tag=$2
    log "building $dockerfile"
    bah build --quiet --isolation chroot --pull-never --layers=false \
        --build-arg RUNTIME_IMAGE=localhost/liverelay-test-base:bookworm --build-arg BINARY_FROM=prebuilt \
        --target runtime -f "$root/$dockerfile" -t "$tag" "$work/context" > "$work/$tag.build.log" 2>&1 \
        || { tail -30 "$work/$tag.build.log" >&2; exit 1; }
}
build Dockerfile.relay liverelay-relay-test
build Dockerfile.operator liverelay-operator-test

# 4. Run what is inside.
expect_in_image() {
    local image=$1
    local user
    user=$(bah inspect --type image --format '{{.OCIv1.Config.User}}' "$image")
    [[ $user == 65532:65532 ]] || { echo "test-images.sh: $image runs as '$user', not 65532:65532" >&2; exit 1; }
    local container
    container=$(bah from --pull-never "$image")
    for command in "--help" "relay --help" "gateway --help" "operator --help" "local --help"; do
        # shellcheck disable=SC2086 # the subcommand and its flag are two words
        bah run --isolation chroot "$container" -- /usr/local/bin/liverelay $command > "$work/run.log" 2>&1 \
            || { cat "$work/run.log" >&2; echo "test-images.sh: $image: liverelay $command failed" >&2; exit 1; }
        grep -q "USAGE" "$work/run.log" \
            || { cat "$work/run.log" >&2; echo "test-images.sh: $image: no usage from $command" >&2; exit 1; }
    done
    if bah run --isolation chroot "$container" -- /bin/sh -c true > /dev/null 2>&1; then
        echo "test-images.sh: $image has a shell" >&2
        exit 1
    fi
    bah rm "$container" > /dev/null
    log "$image: liverelay and its subcommands answer --help, user 65532, no shell"
}
expect_in_image liverelay-relay-test
expect_in_image liverelay-operator-test

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
need python3 "pick free ports" python3
need ffmpeg "publish to the relay in its image" ffmpeg
container=$(bah from --pull-never liverelay-relay-test)
bah copy --chown 65532:65532 "$container" "$root/examples/relay.yaml" /tmp/relay.yaml > /dev/null
bah copy --chown 65532:65532 "$container" "$root/examples/secrets" /tmp/secrets > /dev/null
rtmp_port=$(free_port)
http_port=$(free_port)
log "starting the relay in its image (RTMP 127.0.0.1:$rtmp_port, HTTP 127.0.0.1:$http_port)"
setsid buildah "${storage[@]}" run --isolation chroot --network host --user 65532:65532 "$container" -- \
    /usr/local/bin/liverelay relay --config /tmp/relay.yaml --secrets-dir /tmp/secrets \
    --listen "127.0.0.1:$rtmp_port" --http-listen "127.0.0.1:$http_port" --shutdown-grace 0 \
    > "$work/relay.log" 2>&1 &
relay_group=$!
healthy=false
for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$http_port/healthz" > /dev/null 2>&1; then healthy=true; break; fi
    kill -0 "$relay_group" 2> /dev/null || break
    sleep 0.1
done
if [[ $healthy != true ]]; then
    cat "$work/relay.log" >&2
    echo "test-images.sh: the relay in liverelay-relay-test did not answer /healthz" >&2
    exit 1
fi
curl -fsS "http://127.0.0.1:$http_port/readyz" > /dev/null \
    || { echo "test-images.sh: the relay answers /healthz but not /readyz" >&2; exit 1; }
log "the relay in its image answers /healthz and /readyz"
# The preview loads libavformat with dlopen on first use, so ldd alone does not prove the image has it: publish a
# few seconds and expect fMP4 fragments in the stream's status.
ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=440 \
    -t 6 -c:v libx264 -preset ultrafast -g 25 -pix_fmt yuv420p -c:a aac -f flv \
    "rtmp://127.0.0.1:$rtmp_port/live/$(cat "$root/examples/secrets/demo-ingest/streamKey")" > "$work/ffmpeg.log" 2>&1 &
publisher=$!
previewed=false
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$http_port/api/v1/streams/demo" 2> /dev/null | python3 -c '
import json, sys
preview = json.load(sys.stdin).get("preview") or {}
sys.exit(0 if preview.get("fragments", 0) > 0 else 1)'; then
        previewed=true
        break
    fi
    sleep 0.1
done
wait "$publisher" || true
if [[ $previewed != true ]]; then
    cat "$work/ffmpeg.log" "$work/relay.log" >&2
    curl -fsS "http://127.0.0.1:$http_port/api/v1/streams/demo" >&2 || true
    echo "test-images.sh: the relay in its image made no preview fragment (libavformat missing from the image?)" >&2
    exit 1
fi
log "the relay in its image loads libavformat and packages the preview"
kill -TERM -- "-$relay_group"
for _ in $(seq 1 100); do
    kill -0 -- "-$relay_group" 2> /dev/null || break
    sleep 0.1
done
if kill -0 -- "-$relay_group" 2> /dev/null; then
    echo "test-images.sh: the relay did not stop on SIGTERM within 10 s" >&2
    exit 1
fi
wait "$relay_group" || true
relay_group=""
bah rm "$container" > /dev/null
log "passed: both images built from Dockerfile.relay and Dockerfile.operator and run"
