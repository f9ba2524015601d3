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
# Installs KEDA (pinned: the version whose CRDs the tests validate against) into kubectl's current cluster and waits
# until it serves: its CRDs established, its operator, metrics server and admission webhooks rolled out, and the
# external metrics API available. Installing again is harmless (an upgrade to the same version).
#
#   With helm: the kedacore/keda chart, release "keda" in namespace keda.
#   Without helm (or with --manifest): KEDA's release manifest, applied server-side.
#
# Usage: tools/install-keda.sh [--manifest] [--version VERSION] [--timeout 5m]
set -euo pipefail

version="${KEDA_VERSION:-2.20.1}"
method=auto
timeout=5m
while [[ $# -gt 0 ]]; do
    case $1 in
        --manifest) method=manifest ;;
        --version) version=$2; shift ;;
        --timeout) timeout=$2; shift ;;
        -h|--help) sed -n '13,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "install-keda.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

need() {
    command -v "$1" > /dev/null 2>&1 || {
        echo "install-keda.sh: $1 is needed to $2 but is not installed (see README.md, 'On a cluster')" >&2
        exit 1
    }
}

need kubectl "talk to the cluster"
if [[ $method == auto ]]; then
    if command -v helm > /dev/null 2>&1; then method=helm; else method=manifest; fi
fi

if ! kubectl cluster-info --request-timeout=10s > /dev/null 2>&1; then
    echo "install-keda.sh: no cluster reachable with kubectl's current context ($(kubectl config current-context 2> /dev/null || echo none))" >&2
    exit 1
fi

echo "install-keda.sh: installing KEDA $version with $method into context '$(kubectl config current-context)'"
if [[ $method == helm ]]; then
    need helm "install the KEDA chart"
    helm repo add kedacore https://kedacore.github.io/charts --force-update > /dev/null
    helm upgrade --install keda kedacore/keda --version "$version" --namespace keda --create-namespace \
        --wait --timeout "$timeout"
else
    kubectl apply --server-side --force-conflicts \
        -f "https://github.com/kedacore/keda/releases/download/v$version/keda-$version.yaml"
fi

echo "install-keda.sh: waiting for KEDA to serve"
kubectl wait --for=condition=Established --timeout="$timeout" \
    crd/scaledobjects.keda.sh crd/triggerauthentications.keda.sh
for deployment in keda-operator keda-operator-metrics-apiserver keda-admission-webhooks; do
    kubectl -n keda rollout status "deployment/$deployment" --timeout="$timeout"
done
kubectl wait --for=condition=Available --timeout="$timeout" apiservice/v1beta1.external.metrics.k8s.io
echo "install-keda.sh: KEDA $version is ready"
