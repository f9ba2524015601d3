#!/bin/sh
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
#
# SCRATCH overrides the build directory (default .build).
set -eu
cd "$(dirname "$0")/../.."
scratch=${SCRATCH:-.build}
swift build -c release --scratch-path "$scratch" --product liverelay
swift build -c release --scratch-path "$scratch" --product liverelay-operator-bench
exec "$scratch/release/liverelay-operator-bench" "$@"
