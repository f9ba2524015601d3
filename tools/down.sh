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
# Stops what tools/up.sh started: local mode (Ctrl-C's signal, then waits for every relay to stop), or the Helm
# release in the cluster (the CRD stays, so LiveStreams are not deleted with it; --purge-crd removes it too).
#
# Usage: tools/down.sh [--namespace NS] [--purge-crd]   (LIVERELAY_STATE_DIR as for tools/up.sh)
set -euo pipefail

script_dir=${BASH_SOURCE[0]%/*}
[[ $script_dir == "${BASH_SOURCE[0]}" ]] && script_dir=.
cd "$script_dir/.."
root=$(pwd)
state="${LIVERELAY_STATE_DIR:-$root/.liverelay}"
namespace="liverelay-system"
namespace_given=false
purge=false
while [[ $# -gt 0 ]]; do
    case $1 in
        --namespace) namespace=$2; namespace_given=true; shift ;;
        --purge-crd) purge=true ;;
        -h|--help) sed -n '13,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "down.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# Whether a process runs: a zombie (exited, not yet reaped by whatever adopted it) does not.
running() {
    [[ -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2> /dev/null
}

if [[ -f $state/local.pid ]]; then
    pid=$(cat "$state/local.pid")
    if running "$pid"; then
        echo "down.sh: stopping local mode (pid $pid)"
        kill -INT "$pid"
        for _ in $(seq 1 150); do
            running "$pid" || break
            sleep 0.1
        done
        if running "$pid"; then
            echo "down.sh: local mode did not stop within 15 s: killing it" >&2
            kill -KILL "$pid"
        fi
    fi
    rm -f "$state/local.pid" "$state/up"
    echo "down.sh: local mode stopped"
    exit 0
fi

if [[ -f $state/up ]] && grep -q '^cluster' "$state/up"; then
    command -v helm > /dev/null 2>&1 || { echo "down.sh: helm is needed to uninstall but is not installed" >&2; exit 1; }
    # The namespace up.sh installed into, unless --namespace names another.
    read -r _ _ recorded < "$state/up" || true
    if [[ $namespace_given == false && -n ${recorded:-} ]]; then namespace=$recorded; fi
    helm uninstall liverelay --namespace "$namespace" --wait
    if [[ $purge == true ]]; then
        command -v kubectl > /dev/null 2>&1 || { echo "down.sh: kubectl is needed for --purge-crd but is not installed" >&2; exit 1; }
        kubectl delete crd livestreams.liverelay.io
    fi
    rm -f "$state/up"
    echo "down.sh: liverelay uninstalled from namespace $namespace"
    exit 0
fi
echo "down.sh: nothing to stop (tools/up.sh has not started anything here)"
