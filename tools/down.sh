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
# Stops what tools/up.sh started: local mode (Ctrl-C's signal, then waits for every relay to stop), or liverelay in
# the cluster of the context up.sh installed into, in this order:
#   1. deletes every LiveStream, in all namespaces, while the operator still runs: it releases each stream's port
#      and children and then its liverelay.io/release-port finalizer. Waits until they are gone (--timeout, 120 s by
#      default); one still there then is named and has that finalizer removed (a merge patch), since without the
#      operator nothing else would remove it and its deletion would hang. --keep-streams leaves them (deleting one
#      after the operator is gone hangs on that finalizer);
#   2. uninstalls the Helm release (helm, or the Helm library through tools/helm-release.py) and waits for it;
#   3. with --purge-crd, deletes the LiveStream CRD last, so it does not hang in Terminating on a LiveStream.
#
# Usage: tools/down.sh [--namespace NS] [--purge-crd] [--keep-streams] [--timeout SECONDS]
#        (LIVERELAY_STATE_DIR as for tools/up.sh)
set -euo pipefail

script_dir=${BASH_SOURCE[0]%/*}
[[ $script_dir == "${BASH_SOURCE[0]}" ]] && script_dir=.
cd "$script_dir/.."
root=$(pwd)
state="${LIVERELAY_STATE_DIR:-$root/.liverelay}"
namespace="liverelay-system"
namespace_given=false
purge=false
keep_streams=false
timeout=120
while [[ $# -gt 0 ]]; do
    case $1 in
        --namespace) namespace=$2; namespace_given=true; shift ;;
        --purge-crd) purge=true ;;
        --keep-streams) keep_streams=true ;;
        --timeout) timeout=$2; shift ;;
        -h|--help) sed -n '13,24p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "down.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ $timeout =~ ^[0-9]+$ ]] || { echo "down.sh: --timeout takes whole seconds, not $timeout" >&2; exit 2; }
if [[ $purge == true && $keep_streams == true ]]; then
    echo "down.sh: --purge-crd deletes every LiveStream with the CRD; it cannot --keep-streams" >&2
    exit 2
fi

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
    if ! command -v kubectl > /dev/null 2>&1; then
        echo "down.sh: kubectl is needed to uninstall but is not installed" >&2
        exit 1
    fi
    if command -v helm > /dev/null 2>&1; then
        helm=(helm)
    elif command -v python3 > /dev/null 2>&1 && python3 -c 'import helm_python, yaml' > /dev/null 2>&1; then
        helm=(python3 "$root/tools/helm-release.py")
    else
        echo "down.sh: helm is needed to uninstall but is not installed: install the helm binary" \
            "(https://helm.sh/docs/intro/install/) or the Helm library for python3:" \
            "pip install helm-python-sdk==0.2.2 pyyaml" >&2
        exit 1
    fi
    # The context and namespace up.sh installed into, unless --namespace names another.
    read -r _ context recorded < "$state/up" || true
    if [[ $namespace_given == false && -n ${recorded:-} ]]; then namespace=$recorded; fi
    kube=(kubectl)
    helm_context=()
    if [[ -n ${context:-} ]]; then
        kube+=(--context "$context")
        helm_context=(--kube-context "$context")
    fi
    echo "down.sh: removing liverelay from the cluster of context '${context:-current}', namespace $namespace"

    finalizer=liverelay.io/release-port
    # Every LiveStream as NAMESPACE/NAME, one a line.
    streams() {
        "${kube[@]}" get livestreams.liverelay.io --all-namespaces --request-timeout=30s \
            -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}'
    }
    if [[ $keep_streams == false ]] && "${kube[@]}" get crd livestreams.liverelay.io > /dev/null 2>&1; then
        remaining=$(streams)
        if [[ -n $remaining ]]; then
            echo "down.sh: deleting $(wc -l <<< "$remaining") LiveStream(s) while the operator still runs:" \
                "${remaining//$'\n'/ }"
            "${kube[@]}" delete livestreams.liverelay.io --all --all-namespaces --wait=false > /dev/null
            deadline=$((SECONDS + timeout))
            while [[ -n $remaining && $SECONDS -lt $deadline ]]; do
                sleep 1
                now=$(streams) && remaining=$now
            done
        fi
        if [[ -n $remaining ]]; then
            echo "down.sh: after $timeout s these LiveStreams remain: ${remaining//$'\n'/ }" >&2
            while IFS=/ read -r stream_namespace stream; do
                # A merge patch replaces the whole list: the stream's finalizers but ours.
                others=()
                while IFS= read -r other; do
                    [[ -n $other && $other != "$finalizer" ]] && others+=("\"$other\"")
                done < <("${kube[@]}" get livestream.liverelay.io "$stream" -n "$stream_namespace" \
                    -o jsonpath='{range .metadata.finalizers[*]}{@}{"\n"}{end}' 2> /dev/null || true)
                list=$(IFS=,; echo "[${others[*]}]")
                [[ $list == "[]" ]] && list=null
                echo "down.sh: removing the finalizer $finalizer from LiveStream $stream_namespace/$stream" \
                    "(the operator did not release it; its port may stay on the gateway Service until the" \
                    "release is uninstalled)" >&2
                "${kube[@]}" patch livestream.liverelay.io "$stream" -n "$stream_namespace" --type merge \
                    -p "{\"metadata\":{\"finalizers\":$list}}" > /dev/null || true
            done <<< "$remaining"
            deadline=$((SECONDS + 30))
            while [[ -n $remaining && $SECONDS -lt $deadline ]]; do
                sleep 1
                now=$(streams) && remaining=$now
            done
            if [[ -n $remaining ]]; then
                echo "down.sh: these LiveStreams still remain (finalizers of others?): ${remaining//$'\n'/ }" >&2
            fi
        fi
        [[ -n $remaining ]] || echo "down.sh: no LiveStream remains"
    fi

    "${helm[@]}" uninstall liverelay --namespace "$namespace" --ignore-not-found --wait --timeout 5m \
        ${helm_context[@]+"${helm_context[@]}"}
    if [[ $purge == true ]]; then
        echo "down.sh: deleting the LiveStream CRD"
        "${kube[@]}" delete crd livestreams.liverelay.io --ignore-not-found --timeout=120s
    fi
    rm -f "$state/up"
    echo "down.sh: liverelay uninstalled from namespace $namespace"
    exit 0
fi
echo "down.sh: nothing to stop (tools/up.sh has not started anything here)"
