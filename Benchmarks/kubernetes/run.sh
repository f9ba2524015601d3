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

# Reflector and work-queue benchmark: 10,000 ConfigMaps in the in-process Kubernetes test server, listed and watched
# by a Controller with a no-op reconciler. Prints time to initial sync, resident memory and reconciles per second.
#
#   Benchmarks/kubernetes/run.sh            # debug build
#   Benchmarks/kubernetes/run.sh -c release # release build
#
# LIVERELAY_BENCHMARK_OBJECTS overrides the object count.
set -eu
cd "$(dirname "$0")/../.."
LIVERELAY_BENCHMARK=1 exec swift test "$@" --filter KubernetesBenchmark
