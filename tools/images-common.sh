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
# What tools/build-images.sh and tools/test-images.sh share: the images' names (from the chart), buildah with
# storage private to .build-images/, the debootstrapped bookworm base (cached), the build context holding the
# binary, each Dockerfile's runtime stage built from them, and an image's unpacked size. Sourced first: it sets
# nothing but `script` (the sourcing script's name, for messages), `start`, `release_build_arguments` and functions,
# and needs no tool.
# shellcheck shell=bash

script=${0##*/}
start=$SECONDS

# Uses nothing outside bash: the scripts call it before they know the tools are there.
need() {
    command -v "$1" > /dev/null 2>&1 || {
        echo "$script: $1 is needed to $2 but is not installed (Debian package $3)" >&2
        exit 1
    }
}

log() { echo "$script: [$((SECONDS - start)) s] $*"; }
fail() {
    echo "$script: $*" >&2
    exit 1
}

# The release build of the images' binary, one for every script (the Dockerfiles' build stage says the same; what
# each part saves is in BENCHMARKS.md, "Relay memory"): the Swift runtime and Foundation linked statically (no
# libswift*.so and no ICU library in the image); linked by lld with relative relocations packed (DT_RELR: the loader
# reads 26 KiB of them instead of 3 MiB, and every page it reads stays resident), no symbol exported (the static
# runtime's -export-dynamic put 1.4 MiB of symbol table in memory that nothing looks up), and the functions a relay
# runs laid out together (each function in a section of its own, Swift's and C's, so that lld can move it), in the
# order of tools/relay-symbol-order.txt (made by tools/relay-symbol-order.sh: the
# kernel maps a binary's code 64 KiB at a time, so the same code spread over the whole binary kept three times as
# much resident); stripped. `release_build [--unstripped] [ARGS]` runs it with ARGS added (--show-bin-path prints
# where the binary is; --unstripped keeps the symbol table, for a profiler); `release_build_command` prints it.
release_build_arguments=(-c release --product liverelay --static-swift-stdlib
    -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xswiftc -use-ld=lld
    -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic)
release_build() {
    local strip_flags=(-Xlinker -s) order=()
    if [[ ${1:-} == --unstripped ]]; then
        strip_flags=()
        shift
    fi
    if [[ -f ${root:?}/tools/relay-symbol-order.txt ]]; then
        order=(-Xlinker "--symbol-ordering-file=$root/tools/relay-symbol-order.txt" -Xlinker --no-warn-symbol-ordering)
    fi
    # Swift's writable ".rodata" inputs beside .data, so that .rodata is read-only (see the script).
    local sections=(-Xlinker -T -Xlinker "$root/tools/relay-sections.ld")
    (cd "$root" && swift build "${release_build_arguments[@]}" "${order[@]}" "${sections[@]}" "${strip_flags[@]}" \
        --scratch-path .build-release "$@")
}
release_build_command() {
    echo "swift build ${release_build_arguments[*]} -Xlinker --symbol-ordering-file=tools/relay-symbol-order.txt" \
        "-Xlinker --no-warn-symbol-ordering -Xlinker -T -Xlinker tools/relay-sections.ld -Xlinker -s" \
        "--scratch-path .build-release"
}

# Checks root and the tools every image script needs, then sets `root` (the repository, also the working
# directory), `work` (.build-images/, what is cached between runs) and `state` (.build-images/NAME/, this script's
# storage, context and logs; removed by images_cleanup unless kept).
images_setup() {
    local name=$1
    need buildah "build and run the images" buildah
    need debootstrap "make the base image" debootstrap
    need ldd "find the shared libraries of the binary" libc-bin
    if [[ $(id -u) != 0 ]]; then
        fail "must run as root (debootstrap and buildah's chroot isolation need it)"
    fi
    local dir=${BASH_SOURCE[0]%/*}
    [[ $dir == "${BASH_SOURCE[0]}" ]] && dir=.
    cd "$dir/.." || exit 1
    root=$(pwd)
    work="$root/.build-images"
    state="$work/$name"
    mkdir -p "$state"
    storage=(--root "$state/storage" --runroot "$state/run" --storage-driver vfs)
}

bah() { buildah "${storage[@]}" "$@"; }

# The naming scheme, one for the chart, the docs and these scripts: the chart's default repositories (values.yaml
# image.repository and relayImage.repository) and its appVersion as the default tag.
chart_repository() {
    awk -v block="$1:" '/^[^ #]/ { inside = ($1 == block) } inside && $1 == "repository:" { print $2; exit }' \
        "$root/charts/liverelay/values.yaml"
}
operator_repository() { chart_repository image; }
relay_repository() { chart_repository relayImage; }
chart_app_version() {
    awk '$1 == "appVersion:" { gsub(/"/, "", $2); print $2; exit }' "$root/charts/liverelay/Chart.yaml"
}

# Removes every container and, unless $1 is true, the images and the storage; nothing stays mounted.
images_cleanup() {
    local keep=$1
    if [[ -d $state/storage ]]; then
        bah rm --all > /dev/null 2>&1 || true
        bah unmount --all > /dev/null 2>&1 || true
        if [[ $keep != true ]]; then
            bah rmi --all --force > /dev/null 2>&1 || true
            rm -rf "$state/storage" "$state/run"
        fi
    fi
    rm -rf "$state/context"
}

# The build context of the Dockerfiles' `prebuilt` stage: $state/context/liverelay (the binary; stripped if $2 is
# true) and swift-lib/ with every library ldd finds outside the system's directories (the toolchain's Swift runtime
# of a binary that links it dynamically; empty for one built with --static-swift-stdlib).
make_context() {
    local binary=$1 strip=$2
    [[ -x $binary ]] || fail "no liverelay executable at $binary"
    rm -rf "$state/context"
    mkdir -p "$state/context/swift-lib"
    cp "$binary" "$state/context/liverelay"
    if [[ $strip == true ]]; then
        strip --strip-all "$state/context/liverelay"
    fi
    local lib
    while read -r lib; do
        case $lib in
            /lib/*|/lib64/*|/usr/lib/*|/usr/lib64/*) ;;
            *) cp -L "$lib" "$state/context/swift-lib/" ;;
        esac
    done < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
}

# The runtime stages' base, localhost/liverelay-base:bookworm: debootstrap's minimal bookworm with the libraries the
# Dockerfiles collect (so their rootfs stage installs nothing), cached in .build-images/ as a tarball.
base_packages="ca-certificates,libavformat59,libavcodec59,libavutil57,libssl3,libsrtp2-1,zlib1g"
base_image=localhost/liverelay-base:bookworm
make_base() {
    local base_tar partial
    base_tar="$work/base-bookworm-$(echo "$base_packages" | cksum | cut -d' ' -f1).tar"
    if [[ ! -f $base_tar ]]; then
        log "debootstrapping a minimal bookworm with $base_packages (cached in ${base_tar#"$root/"})"
        partial="$work/base.partial.$$"
        rm -rf "$partial"
        debootstrap --variant=minbase --include="$base_packages" bookworm "$partial" \
            "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$state/debootstrap.log" 2>&1 \
            || { tail -20 "$state/debootstrap.log" >&2; rm -rf "$partial"; fail "debootstrap failed"; }
        rm -rf "$partial/var/cache/apt/archives/"*.deb "$partial/var/lib/apt/lists/"*
        tar -C "$partial" -cf "$base_tar.$$" .
        mv "$base_tar.$$" "$base_tar"
        rm -rf "$partial"
    fi
    log "importing the base"
    local container
    container=$(bah from scratch)
    bah add --quiet "$container" "$base_tar" / > /dev/null
    bah commit --quiet "$container" "$base_image" > /dev/null
    bah rm "$container" > /dev/null
}

# Builds the runtime stage of a Dockerfile on the base from the context, nothing pulled: build_image DOCKERFILE NAME.
build_image() {
    local dockerfile=$1 name=$2
    local build_log="$state/${dockerfile#Dockerfile.}.build.log"
    log "building $dockerfile as $name"
    bah build --quiet --isolation chroot --pull-never --layers=false \
        --build-arg RUNTIME_IMAGE="$base_image" --build-arg BINARY_FROM=prebuilt \
        --target runtime -f "$root/$dockerfile" -t "$name" "$state/context" > "$build_log" 2>&1 \
        || { tail -30 "$build_log" >&2; fail "building $dockerfile failed (log: $build_log)"; }
}

# The unpacked size of an image in bytes: its file system as a container sees it (apparent sizes, a hard-linked
# file once), what `docker image ls` calls its size.
image_size() {
    local container mount size
    container=$(bah from --pull-never "$1")
    mount=$(bah mount "$container")
    size=$(du -s --apparent-size --block-size=1 "$mount" | cut -f1)
    bah unmount "$container" > /dev/null
    bah rm "$container" > /dev/null
    echo "$size"
}

megabytes() { awk -v bytes="$1" 'BEGIN { printf "%.1f MB", bytes / 1e6 }'; }
