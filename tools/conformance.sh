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
# The API behaviours the project relies on, driven with kubectl, one line each: `behaviour: result`, the result
# normalised (exit status, the HTTP code and reason read from kubectl's error text, never a timestamp, uid or
# resourceVersion) so that kube-apiserver and the in-process test server print the same lines. The expected
# lines, written from what kube-apiserver v1.28+ does (its documentation and kubectl's source), are
# tools/conformance.expected; Tests/KubernetesTestServerTests/ConformanceTests.swift runs this script against the
# test server, or against LIVERELAY_TEST_KUBECONFIG's cluster.
#
# Everything happens in a namespace of its own (conformance-XXXXX), deleted at the end; the LiveStream CRD
# (crds/livestream.yaml) is applied when the cluster lacks it and left installed: deleting a CRD deletes every
# object of it in every namespace, those of tests running beside this one and of a real user's streams alike (the
# test suite never deletes it either). Needs kubectl 1.26 or later
# (status writes with --subresource, --validate=strict) and curl (a raw apply body, through kubectl proxy).
#
# Usage: tools/conformance.sh [--kubeconfig FILE] [--namespace NAME] [--expect FILE]
#   --expect FILE  compare the lines with FILE and exit 1, showing the difference, when they differ
set -uo pipefail

script_dir=${BASH_SOURCE[0]%/*}
[[ $script_dir == "${BASH_SOURCE[0]}" ]] && script_dir=.
root=$(cd "$script_dir/.." && pwd)

kubeconfig=${KUBECONFIG:-}
namespace=conformance-$(tr -dc 'a-z0-9' < /dev/urandom | head -c 5)
expect=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --kubeconfig) kubeconfig=$2; shift ;;
        --namespace) namespace=$2; shift ;;
        --expect) expect=$2; shift ;;
        -h|--help) sed -n '13,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "conformance.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

kubectl_command=${KUBECTL:-kubectl}
k() { "$kubectl_command" ${kubeconfig:+--kubeconfig "$kubeconfig"} --request-timeout=30s "$@"; }
kn() { k -n "$namespace" "$@"; }

for tool in "$kubectl_command" curl; do
    command -v "$tool" > /dev/null 2>&1 || { echo "conformance.sh: $tool is not on PATH" >&2; exit 2; }
done
minor=$(k version --client -o json 2> /dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -1)
if [[ -z $minor || $minor -lt 26 ]]; then
    echo "conformance.sh: kubectl 1.${minor:-?} is too old; the suite needs 1.26 or later" >&2
    exit 2
fi

work=$(mktemp -d)
proxy_pid=""
cleanup() {
    [[ -n $proxy_pid ]] && kill "$proxy_pid" 2> /dev/null
    k delete namespace "$namespace" "$namespace-typed" --ignore-not-found --wait=false > /dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

output=$work/lines
say() { printf '%s: %s\n' "$1" "$2" | tee -a "$output"; }

# run CMD...: runs a command, keeping its output in $work/out and its exit status in $status.
status=0
run() {
    "$@" > "$work/out" 2>&1
    status=$?
}

# The HTTP code and reason of a failed kubectl command, read from its error text as kubectl prints a Status:
# "Error from server (Reason): ...", "The Kind "name" is invalid: ..." (422), "Apply failed with ..." (409).
refusal() {
    local text reason
    text=$(cat "$work/out")
    case $text in
        *"Apply failed with "*) reason=Conflict ;;
        # kubectl rewords a 415 to a patch: "error: <type> is not supported by <kind>: <the Status message>".
        *"unknown format - accepted media types include"*) reason=UnsupportedMediaType ;;
        *"Error from server ("*) reason=${text#*Error from server (}; reason=${reason%%)*} ;;
        *" is invalid: "*) reason=Invalid ;;
        *) echo "no Status in: $(head -c 200 "$work/out" | tr '\n' ' ')"; return ;;
    esac
    local code
    case $reason in
        BadRequest) code=400 ;; Unauthorized) code=401 ;; Forbidden) code=403 ;; NotFound) code=404 ;;
        MethodNotAllowed) code=405 ;; AlreadyExists|Conflict) code=409 ;; Gone|Expired) code=410 ;;
        UnsupportedMediaType) code=415 ;; Invalid) code=422 ;; TooManyRequests) code=429 ;; *) code=500 ;;
    esac
    echo "$code $reason"
}

write() { cat > "$work/$1"; }

# --- setup: the namespace, and the CRD when the cluster lacks it.
if ! k create namespace "$namespace" > "$work/out" 2>&1; then
    echo "conformance.sh: cannot create namespace $namespace: $(cat "$work/out")" >&2
    exit 1
fi
if ! k get crd livestreams.liverelay.io > /dev/null 2>&1; then
    k apply --server-side -f "$root/crds/livestream.yaml" > /dev/null || exit 1
fi
k wait --for=condition=Established crd/livestreams.liverelay.io --timeout=60s > /dev/null || exit 1

stream() {
    printf 'apiVersion: liverelay.io/v1alpha1\nkind: LiveStream\nmetadata:\n  name: %s\n%s\n' "$1" "$2"
}

# --- generation: bumped by a spec change, not by a status change.
stream gen 'spec: {}' | write gen.yaml
kn create -f "$work/gen.yaml" > /dev/null
generation() { kn get livestream "$1" -o 'jsonpath={.metadata.generation}'; }
before=$(generation gen)
kn patch livestream gen --type=merge -p '{"spec":{"suspend":true}}' > /dev/null
after=$(generation gen)
say "generation bumps on a spec change" "$before -> $after"
kn patch livestream gen --subresource=status --type=merge -p '{"status":{"ingestURL":"rtmp://status.example/live"}}' \
    > /dev/null
say "generation stays on a status change" "$after -> $(generation gen)"

# --- a custom resource takes no strategic merge patch (kubectl patch's default type).
run kn patch livestream gen -p '{"spec":{"suspend":false}}'
say "strategic merge patch of a custom resource" "exit=$status $(refusal)"

# --- the schema refuses an invalid LiveStream, naming the field.
stream bad 'spec: {ingest: {port: 70000}}' | write bad.yaml
run kn create -f "$work/bad.yaml"
field=$(grep -oE 'spec\.[A-Za-z.]+: Invalid value' "$work/out" | head -1 | cut -d: -f1)
say "schema refusal of an invalid LiveStream" "exit=$status $(refusal) $field"

# --- status sent to the main resource is ignored (the CRD has a status subresource).
stream st "spec: {}
status: {ingestURL: rtmp://ignored.example/create}" | write st.yaml
kn create -f "$work/st.yaml" > /dev/null
created=$(kn get livestream st -o 'jsonpath={.status.ingestURL}')
run kn patch livestream st --type=merge -p '{"status":{"ingestURL":"rtmp://ignored.example/patch"}}'
patched=$(kn get livestream st -o 'jsonpath={.status.ingestURL}')
ignored() { [[ $1 == rtmp://ignored.example/* ]] && echo stored || echo ignored; }
say "status on the main resource" "create $(ignored "$created"), patch exit=$status $(ignored "$patched")"

# --- an update with a stale resourceVersion is a conflict.
kn get livestream gen -o json > "$work/stale.json"
kn patch livestream gen --type=merge -p '{"spec":{"suspend":false}}' > /dev/null
run kn replace -f "$work/stale.json"
say "update with a stale resourceVersion" "exit=$status $(refusal)"

# --- server-side apply: a conflict between two managers, then force.
configmap() { printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  %s\n' "$1" "$2"; }
configmap ssa 'owner: alice' | write alice.yaml
configmap ssa 'owner: bob' | write bob.yaml
kn apply --server-side --field-manager=alice -f "$work/alice.yaml" > /dev/null
run kn apply --server-side --field-manager=bob -f "$work/bob.yaml"
conflict=$(sed -n 's/.*Apply failed with \(.*\)$/\1/p' "$work/out" | head -1)
say "server-side apply conflict between two managers" "exit=$status $(refusal): $conflict"
run kn apply --server-side --field-manager=bob --force-conflicts -f "$work/bob.yaml"
# Who owns .data.owner: the managedFields entries whose fieldsV1 has f:data.f:owner.
# shellcheck disable=SC2016 # a Go template, not a shell expansion
template='{{range $e := .metadata.managedFields}}{{range $k, $v := index $e.fieldsV1 "f:data"}}'
# shellcheck disable=SC2016 # a Go template, not a shell expansion
template+='{{if eq $k "f:owner"}}{{$e.manager}}/{{$e.operation}} {{end}}{{end}}{{end}}'
owners=$(kn get configmap ssa --show-managed-fields -o go-template="$template")
say "server-side apply force takes ownership" \
    "exit=$status value=$(kn get configmap ssa -o 'jsonpath={.data.owner}') owners of .data.owner: ${owners% }"

# --- a finalizer holds the deletion; removing it completes the deletion.
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [conformance.liverelay.io/hold]\n' \
    | write held.yaml
kn create -f "$work/held.yaml" > /dev/null
run kn delete configmap held --wait=false
stamp=$(kn get configmap held -o 'jsonpath={.metadata.deletionTimestamp}' 2> /dev/null)
say "a finalizer holds the deletion" "delete exit=$status, object $([[ -n $stamp ]] && echo "stays, deletionTimestamp set")"
kn patch configmap held --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]' > /dev/null
run kn get configmap held
say "removing the finalizer completes the deletion" "get exit=$status $(refusal)"

# --- a watch from a resourceVersion replays ADDED, MODIFIED, DELETED in order.
# The list's own resourceVersion: a list that matches nothing has no item's to confuse it with.
from=$(k get --raw "/api/v1/namespaces/$namespace/configmaps?fieldSelector=metadata.name%3Dnone" \
    | grep -oE '"resourceVersion": ?"[0-9]+"' | head -1 | cut -d'"' -f4)
kn create configmap watched --from-literal=a=1 > /dev/null
kn patch configmap watched --type=merge -p '{"data":{"a":"2"}}' > /dev/null
kn delete configmap watched > /dev/null
watch="watch=1&resourceVersion=$from&fieldSelector=metadata.name%3Dwatched&timeoutSeconds=3"
events=$(k get --raw "/api/v1/namespaces/$namespace/configmaps?$watch" \
    | grep -oE '"type":"[A-Z]+"' | cut -d'"' -f4 | tr '\n' ' ')
say "watch event order" "${events% }"

# --- owner cascade: deleting the owner in the background deletes its dependent.
kn create configmap owner --from-literal=a=1 > /dev/null
uid=$(kn get configmap owner -o 'jsonpath={.metadata.uid}')
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dependent\n  ownerReferences:\n  - {apiVersion: v1, kind: ConfigMap, name: owner, uid: %s}\n' \
    "$uid" | write dependent.yaml
kn create -f "$work/dependent.yaml" > /dev/null
kn delete configmap owner --cascade=background > /dev/null
result="dependent remains"
for _ in $(seq 60); do
    if ! kn get configmap dependent > /dev/null 2>&1; then result="dependent deleted"; break; fi
    sleep 1
done
say "owner cascade (background)" "$result"

# --- typed creates (protobuf bodies from kubectl 1.32).
run kn create secret generic typed --from-literal=k=v
say "kubectl create secret generic" \
    "exit=$status type=$(kn get secret typed -o 'jsonpath={.type}') data.k=$(kn get secret typed -o 'jsonpath={.data.k}')"
run kn create configmap typed --from-literal=k=v
say "kubectl create configmap" "exit=$status data.k=$(kn get configmap typed -o 'jsonpath={.data.k}')"
run k create namespace "$namespace-typed"
say "kubectl create namespace" "exit=$status phase=$(k get namespace "$namespace-typed" -o 'jsonpath={.status.phase}')"

# --- kubectl wait sees a condition set through the status subresource.
stream waited 'spec: {}' | write waited.yaml
kn create -f "$work/waited.yaml" > /dev/null
kn wait --for=condition=Ready livestream/waited --timeout=60s > "$work/wait" 2>&1 &
wait_pid=$!
sleep 1
ready='{"type":"Ready","status":"True","reason":"Conformance","message":"set by the conformance suite",'
ready+='"lastTransitionTime":"2026-01-01T00:00:00Z"}'
kn patch livestream waited --subresource=status --type=merge -p "{\"status\":{\"conditions\":[$ready]}}" > /dev/null
wait "$wait_pid"
waited=$?
say "kubectl wait --for=condition=Ready" "exit=$waited $(grep -o 'condition met' "$work/wait")"

# --- an apply body with JSON's \/ escape is refused as go-yaml refuses it (sent raw: kubectl never writes \/).
# kubectl itself in the background, not the function k: $! must be kubectl's pid, for the kill below.
"$kubectl_command" ${kubeconfig:+--kubeconfig "$kubeconfig"} proxy --port=0 > "$work/proxy" 2>&1 &
proxy_pid=$!
port=""
for _ in $(seq 50); do
    port=$(sed -n 's/.*Starting to serve on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/proxy")
    [[ -n $port ]] && break
    sleep 0.1
done
code=$(curl -sS -o "$work/out" -w '%{http_code}' -X PATCH -H 'Content-Type: application/apply-patch+yaml' \
    --data-binary '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"escaped"},"data":{"url":"rtmp:\/\/h\/app"}}' \
    "http://127.0.0.1:$port/api/v1/namespaces/$namespace/configmaps/escaped?fieldManager=conformance")
reason=$(grep -oE '"reason": ?"[A-Za-z]+"' "$work/out" | cut -d'"' -f4)
say "apply body with \\/ refused" "$code $reason $(grep -o 'found unknown escape character' "$work/out" | head -1)"
kill "$proxy_pid" 2> /dev/null
wait "$proxy_pid" 2> /dev/null
proxy_pid=""

# --- dry-run: a server-side dry-run create stores nothing.
run kn create configmap dry --from-literal=a=b --dry-run=server
dry=$status
run kn get configmap dry
say "dry-run=server create stores nothing" "create exit=$dry, get exit=$status $(refusal)"

# --- an unknown field with --validate=strict is refused.
stream unknown 'spec: {bogus: 1}' | write unknown.yaml
run kn create --validate=strict -f "$work/unknown.yaml"
say "unknown field with --validate=strict" "exit=$status $(refusal) $(grep -oE 'unknown field "[^"]+"' "$work/out" | head -1)"

# --- label selectors on a list.
for name in sel-a1 sel-a2 sel-b; do
    kn create configmap "$name" --from-literal=x=y > /dev/null
    kn label configmap "$name" "tier=${name:4:1}" > /dev/null
done
equal=$(kn get configmaps -l tier=a -o name | tr '\n' ' ')
set_based=$(kn get configmaps -l 'tier,tier notin (a)' -o name | tr '\n' ' ')
say "label selector list" "tier=a: ${equal% }; tier,tier notin (a): ${set_based% }"

if [[ -n $expect ]]; then
    if ! diff -u "$expect" "$output" >&2; then
        echo "conformance.sh: the lines differ from $expect" >&2
        exit 1
    fi
fi
