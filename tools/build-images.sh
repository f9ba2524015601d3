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
# Builds both images from this repository with buildah, without a Docker engine and without pulling anything from
# a registry, and writes each as an archive that docker, containerd and kind load:
#
#   ghcr.io/liverelay/liverelay-relay:TAG     (Dockerfile.relay)     OUTPUT/liverelay-relay-TAG.tar
#   ghcr.io/liverelay/liverelay-operator:TAG  (Dockerfile.operator)  OUTPUT/liverelay-operator-TAG.tar
#
# The names are the chart's (values.yaml image.repository and relayImage.repository), TAG its appVersion unless
# --tag says otherwise, so the chart runs what this builds. The binary is built on this host, release, with the
# Swift runtime linked statically, by lld with packed relative relocations, no exported symbols and no symbols
# (images-common.sh's release_build; BENCHMARKS.md, "Relay memory", says what each saves):
#
#   swift build -c release --product liverelay --static-swift-stdlib -Xswiftc -use-ld=lld \
#     -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic -Xlinker -s --scratch-path .build-release
#
# or is --binary PATH (built with --static-swift-stdlib; it is stripped here, and refused if it links a Swift
# runtime library). Each Dockerfile's runtime stage is built with BINARY_FROM=prebuilt on a minimal Debian bookworm
# made with debootstrap (cached in .build-images/), buildah running with --isolation chroot on vfs storage private
# to .build-images/build-images/ (removed at the end unless --keep-storage). It prints each image's name, archive
# and unpacked size. Needs root and the Debian packages buildah, debootstrap and binutils.
#
# The archives are in docker-archive format (`docker save`'s, manifest.json with the name): `docker load` takes
# only that (an OCI layout archive only with Docker's containerd image store), and containerd reads both. To load:
#
#   docker load -i OUTPUT/liverelay-relay-TAG.tar
#   ctr --namespace k8s.io images import OUTPUT/liverelay-relay-TAG.tar    # containerd, for the kubelet
#   kind load image-archive OUTPUT/liverelay-relay-TAG.tar                  # every node of a kind cluster
#
# Usage: tools/build-images.sh [--output DIR] [--tag TAG] [--binary PATH] [--keep-storage]
#   --output DIR     where the archives go (default .build-images/out)
#   --tag TAG        the images' tag (default: appVersion of charts/liverelay/Chart.yaml)
#   --binary PATH    a liverelay built with --static-swift-stdlib instead of building one
#   --keep-storage   keep the images in .build-images/build-images/storage (buildah --root there --storage-driver vfs)
set -euo pipefail

script_dir=${BASH_SOURCE[0]%/*}
[[ $script_dir == "${BASH_SOURCE[0]}" ]] && script_dir=.
# shellcheck source=tools/images-common.sh
source "$script_dir/images-common.sh"
output=""
tag=""
binary=""
keep=false
while [[ $# -gt 0 ]]; do
    case $1 in
        --output|--tag|--binary)
            [[ $# -ge 2 && -n $2 ]] || { echo "$script: $1 needs a value (see --help)" >&2; exit 2; }
            case $1 in
                --output) output=$2 ;;
                --tag) tag=$2 ;;
                --binary) binary=$2 ;;
            esac
            shift
            ;;
        --keep-storage) keep=true ;;
        -h|--help) awk 'NR >= 13 { if (!/^#/) exit; sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "$script: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
# Paths given relative to where the script was started, before images_setup changes to the repository.
[[ -n $output && $output != /* ]] && output="$PWD/$output"
[[ -n $binary && $binary != /* ]] && binary="$PWD/$binary"

images_setup build-images
need strip "strip the binary" binutils
trap 'images_cleanup "$keep"' EXIT

output=${output:-$work/out}
tag=${tag:-$(chart_app_version)}
[[ -n $tag ]] || fail "no tag given and no appVersion in charts/liverelay/Chart.yaml"
relay_name="$(relay_repository):$tag"
operator_name="$(operator_repository):$tag"

# 1. The binary: release, the Swift runtime (and Foundation) linked statically, stripped.
if [[ -z $binary ]]; then
    need swift "build liverelay" "(the Swift toolchain)"
    log "building liverelay: $(release_build_command)"
    release_build > "$state/swift-build.log" 2>&1 \
        || { tail -30 "$state/swift-build.log" >&2; fail "swift build failed"; }
    binary="$(release_build --show-bin-path)/liverelay"
fi
make_context "$binary" true
swift_libraries=("$state/context/swift-lib/"*)
if [[ -e ${swift_libraries[0]} ]]; then
    fail "$binary links the Swift runtime dynamically (${swift_libraries[*]##*/}): build it with --static-swift-stdlib"
fi
log "binary $binary, stripped: $(megabytes "$(stat -c %s "$state/context/liverelay")")"

# 2. The images, on the debootstrapped base.
make_base
build_image Dockerfile.relay "$relay_name"
build_image Dockerfile.operator "$operator_name"

# 3. The archives, and what each image weighs unpacked.
mkdir -p "$output"
for name in "$relay_name" "$operator_name"; do
    archive="$output/$(echo "${name##*/}" | tr : -).tar"
    rm -f "$archive"
    bah push --quiet "$name" "docker-archive:$archive:$name" > /dev/null
    printf '%s  %s  unpacked %s\n' "$name" "${archive#"$root/"}" "$(megabytes "$(image_size "$name")")"
done
log "done"
