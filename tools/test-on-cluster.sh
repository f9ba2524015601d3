#!/bin/sh
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
# Runs the Kubernetes tests (the client, controller, operator, gateway-route and console-store suites) against the
# cluster of KUBECONFIG instead of the in-process test server, in parallel as CI runs them. Each test makes a
# namespace of its own (lrt-XXXXXXXX, labelled liverelay.io/test=true), applies the LiveStream CRD server-side, KEDA's
# ScaledObject CRD only if it asks for KEDA and none is served, and deletes its namespace afterwards; CRDs are never
# deleted.
# Tests that inject faults into the in-process server skip those steps and say so ("[real cluster] ...").
#
# Usage: tools/test-on-cluster.sh [--scratch-path DIR] [--no-build] [--filter REGEX] KUBECONFIG [test arguments...]
#   --scratch-path DIR  SwiftPM's build directory (default .build)
#   --no-build          run what DIR already holds
#   --filter REGEX      only the tests of those suites whose name also matches REGEX (e.g. OperatorScaleTests)
# The test arguments go to the test runner as they are.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$root/.build
build=true
only=""
while [ $# -gt 0 ]; do
    case $1 in
        --scratch-path) scratch=$2; shift 2 ;;
        --no-build) build=false; shift ;;
        --filter) only=$2; shift 2 ;;
        -h | --help) sed -n '13,24p' "$0"; exit 0 ;;
        --) shift; break ;;
        -*) echo "test-on-cluster.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $# -lt 1 ]; then
    echo "Usage: tools/test-on-cluster.sh [--scratch-path DIR] [--no-build] [--filter REGEX] KUBECONFIG" \
        "[test arguments...]" >&2
    exit 2
fi
kubeconfig=$1
shift
if [ ! -r "$kubeconfig" ]; then
    echo "test-on-cluster.sh: cannot read kubeconfig $kubeconfig" >&2
    exit 2
fi
case $kubeconfig in
    /*) ;;
    *) kubeconfig=$(pwd)/$kubeconfig ;;
esac

# The suites: every test of the targets that hold them (their unit tests need no cluster and run too). The
# runner's own --filter options add to each other, so a narrower choice is made part of this one.
filter='^(KubernetesClientTests|KubernetesControllerTests|OperatorTests|ConsoleClusterTests)\.'
[ -z "$only" ] || filter="$filter.*($only)"

if [ "$build" = true ]; then
    swift build --package-path "$root" --scratch-path "$scratch" --build-tests
fi

# The Python modules some of these tests run (tools/validate-manifests.py) are where tools/test.sh installs them: its
# virtual environment's python3 comes first, as in tools/test.sh.
venv=${LIVERELAY_PYTHON_VENV:-$root/.build-python}
if [ -x "$venv/bin/python3" ]; then
    PATH=$venv/bin:$PATH
    export PATH
fi

status=0
bundle=$scratch/debug/liverelayPackageTests.xctest
if [ -f "$bundle" ] && [ -x "$bundle" ]; then
    # Linux: the test bundle is an executable; run it directly (no lock on the build directory).
    LIVERELAY_TEST_KUBECONFIG=$kubeconfig "$bundle" --testing-library swift-testing --filter "$filter" "$@" \
        || status=$?
else
    LIVERELAY_TEST_KUBECONFIG=$kubeconfig swift test --package-path "$root" --scratch-path "$scratch" --skip-build \
        --filter "$filter" "$@" || status=$?
fi

# What the tests left: their namespaces are deleted in the background, so Terminating ones are expected for a
# while; an Active one is a test that did not clean up.
if command -v kubectl > /dev/null 2>&1; then
    left=$(kubectl --kubeconfig "$kubeconfig" get namespaces -l liverelay.io/test=true \
        -o 'jsonpath={range .items[?(@.status.phase=="Active")]}{.metadata.name}{" "}{end}' 2> /dev/null || true)
    if [ -n "$left" ]; then
        echo "test-on-cluster.sh: namespaces left Active: $left" >&2
        [ "$status" -ne 0 ] || status=1
    fi
fi
exit "$status"
