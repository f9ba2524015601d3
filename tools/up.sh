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
# Starts liverelay where it can run.
#
#   With a reachable cluster (kubectl's current context, or --cluster): installs KEDA (tools/install-keda.sh, unless
#   --no-keda), then the CRD, the operator and the gateway with the Helm chart in charts/liverelay (--set passes any
#   chart value, e.g. --set gateway.service.type=NodePort --set ingestHost=rtmp.example.com), and waits until the
#   operator and the gateway are available. With the helm binary if there is one; without, with the Helm library
#   through tools/helm-release.py (python3 with helm-python: pip install helm-python-sdk==0.2.2 pyyaml).
#   Without one (or with --local): starts local mode in the background on FILE (default examples/streams.yaml),
#   waits until it serves, and prints the ingest URLs. tools/down.sh stops whichever was started.
#
# Usage: tools/up.sh [--local | --cluster] [--file FILE] [--namespace NS] [--no-keda] [--set KEY=VALUE]...
#                    [-- extra arguments for liverelay local]
set -euo pipefail

script_dir=${BASH_SOURCE[0]%/*}
[[ $script_dir == "${BASH_SOURCE[0]}" ]] && script_dir=.
cd "$script_dir/.."
root=$(pwd)
state="${LIVERELAY_STATE_DIR:-$root/.liverelay}"

mode=auto
file="examples/streams.yaml"
namespace="liverelay-system"
keda=true
sets=()
extra=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --local) mode=local ;;
        --cluster) mode=cluster ;;
        --set) sets+=(--set "$2"); shift ;;
        --file) file=$2; shift ;;
        --namespace) namespace=$2; shift ;;
        --no-keda) keda=false ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '13,26p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "up.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

need() {
    command -v "$1" > /dev/null 2>&1 || { echo "up.sh: $1 is needed for $2 but is not installed" >&2; exit 1; }
}

# helm=(the helm binary), or the Helm library through tools/helm-release.py, which takes helm's arguments.
find_helm() {
    if command -v helm > /dev/null 2>&1; then
        helm=(helm)
    elif command -v python3 > /dev/null 2>&1 && python3 -c 'import helm_python, yaml' > /dev/null 2>&1; then
        helm=(python3 "$root/tools/helm-release.py")
    else
        echo "up.sh: helm is needed for installing into a cluster but is not installed: install the helm binary" \
            "(https://helm.sh/docs/intro/install/) or the Helm library for python3:" \
            "pip install helm-python-sdk==0.2.2 pyyaml" >&2
        exit 1
    fi
}

if [[ $mode == auto ]]; then
    if command -v kubectl > /dev/null 2>&1 && kubectl cluster-info --request-timeout=5s > /dev/null 2>&1; then
        mode=cluster
    else
        mode=local
    fi
fi

if [[ $mode == cluster ]]; then
    need kubectl "installing into a cluster"
    find_helm
    context=$(kubectl config current-context)
    echo "up.sh: installing liverelay into the cluster of context '$context', namespace $namespace"
    if [[ $keda == true ]]; then
        "$root/tools/install-keda.sh"
    fi
    echo "up.sh: installing the chart with ${helm[*]}"
    "${helm[@]}" upgrade --install liverelay "$root/charts/liverelay" --namespace "$namespace" --create-namespace \
        --set keda.enabled="$keda" ${sets[@]+"${sets[@]}"} --wait --timeout 5m
    mkdir -p "$state"
    echo "cluster $context $namespace" > "$state/up"
    echo "up.sh: done. Create a stream:  kubectl apply -f examples/kubernetes/target-keys.yaml -f examples/kubernetes/livestream.yaml"
    echo "       then watch it:          kubectl get livestreams -w"
    exit 0
fi

[[ -f $file ]] || { echo "up.sh: no streams file $file" >&2; exit 1; }
mkdir -p "$state"
if [[ -f $state/local.pid ]] && kill -0 "$(cat "$state/local.pid")" 2> /dev/null; then
    echo "up.sh: local mode already runs (pid $(cat "$state/local.pid")); tools/down.sh stops it" >&2
    exit 1
fi
if [[ -n ${LIVERELAY_BIN:-} ]]; then
    binary=$LIVERELAY_BIN
else
    need swift "local mode (it builds liverelay)"
    echo "up.sh: building liverelay"
    swift build --product liverelay > "$state/build.log" 2>&1 || { tail -20 "$state/build.log" >&2; exit 1; }
    binary="$(swift build --show-bin-path)/liverelay"
fi
: > "$state/local.log"
nohup "$binary" local -f "$file" ${extra[@]+"${extra[@]}"} > "$state/local.log" 2>&1 &
echo $! > "$state/local.pid"
echo "local" > "$state/up"
# Local mode prints one line per stream once it serves; wait for them (or for it to fail).
for _ in $(seq 1 300); do
    if grep -q "ingest rtmp://" "$state/local.log"; then
        break
    fi
    if ! kill -0 "$(cat "$state/local.pid")" 2> /dev/null; then
        echo "up.sh: local mode did not start:" >&2
        cat "$state/local.log" >&2
        rm -f "$state/local.pid"
        exit 1
    fi
    sleep 0.2
done
grep "ingest rtmp://\|stream key" "$state/local.log" || true
echo "up.sh: local mode runs (pid $(cat "$state/local.pid"), log $state/local.log); tools/down.sh stops it"
