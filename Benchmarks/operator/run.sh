#!/usr/bin/env bash
##===----------------------------------------------------------------------===##
##
## This source file is part of the liverelay open source project
##
## Copyright (c) 2026 the liverelay project authors
## Licensed under Apache License v2.0
##
## SPDX-License-Identifier: Apache-2.0
##
##===----------------------------------------------------------------------===##

# The operator at scale: 1,000 LiveStreams created at once on the in-process Kubernetes test server (or on the
# cluster of LIVERELAY_TEST_KUBECONFIG: its namespace, CRDs installed, KEDA too or every relay starts a pod), the
# operator running as its own `liverelay operator` process. Prints the time until every stream is Ready, the API
# requests per stream by verb, the operator's resident memory at rest, and its requests in a quiet minute.
#
#   Benchmarks/operator/run.sh                         # release build, 1,000 streams, a 60 s quiet window
#   Benchmarks/operator/run.sh --streams 10000 --keda  # any liverelay-operator-bench option
#   Benchmarks/operator/run.sh --image-link --streams 10000 --keda
#
# --image-link (first) builds liverelay as the images do (tools/images-common.sh's release_build: the Swift runtime
# and Foundation linked statically, lld, relocations packed, stripped), the benchmark with the same flags beside it,
# and measures that operator: the chart's. Without it, a plain release build (Swift's libraries shared, unstripped):
# the same code, with about 20 MiB more of file pages resident. Run either with MALLOC_ARENA_MAX=1 for the chart's
# malloc settings.
#
# SCRATCH overrides the build directory (default .build, and .build-release, release_build's own, with
# --image-link).
set -eu
cd "$(dirname "$0")/../.."
if [[ ${1:-} == --image-link ]]; then
    shift
    scratch=${SCRATCH:-.build-release}
    # shellcheck source=tools/images-common.sh
    source tools/images-common.sh
    root=$PWD
    release_build --scratch-path "$scratch"
    release_build --scratch-path "$scratch" --product liverelay-operator-bench
    exec "$(release_build --scratch-path "$scratch" --show-bin-path)/liverelay-operator-bench" "$@"
fi
scratch=${SCRATCH:-.build}
swift build -c release --scratch-path "$scratch" --product liverelay
swift build -c release --scratch-path "$scratch" --product liverelay-operator-bench
exec "$scratch/release/liverelay-operator-bench" "$@"
