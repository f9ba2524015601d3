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
# A check a platform engineer runs against a cluster with KEDA (kind, k3s, a cloud): installs the chart into a fresh
# namespace, streams through it, and times each step, one line per step with its figure, then a summary. Exits 1 if
# any step failed; removes what it made in every case (the LiveStream CRD stays, as helm leaves it).
#
#   1. the chart (helm, or tools/helm-release.py) with keda.enabled=true, release and namespace liverelay-e2e-RANDOM,
#      serving that namespace only; waits for the operator and the gateway
#   2. a LiveStream (as examples/kubernetes/livestream.yaml) whose target is this script's own nginx-rtmp sink,
#      started here on an ephemeral port on 0.0.0.0, idleSeconds 30, with a random ingest key in a Secret
#   3. its relay Deployment at 0 replicas before anyone publishes
#   4. ffmpeg publishes a 20 s test pattern to rtmp://GATEWAY:PORT/live/KEY: the time until the relay goes 0 -> 1
#      and the stream's status.phase is Live, and decodable video of at least 15 s at the sink (ffprobe)
#   5. after the publish, the time until KEDA has the relay back at 0 (within idleSeconds + 60 s)
#   6. Go Offline (spec.suspend: true): a publish is refused and ffmpeg's output says why ("suspend")
#   7. suspend while live: a 60 s publish ends within 5 s of the suspend
#   8. deleting the LiveStream removes its Deployment, Service and ScaledObject ls-NAME and its gateway port
#   9. the release uninstalled and the namespace deleted
#
# Needs kubectl, ffmpeg, ffprobe, nginx with libnginx-mod-rtmp, and helm or python3 with helm-python
# (pip install helm-python-sdk==0.2.2 pyyaml). --local-only checks this machine's half alone, without a cluster:
# the tools, then the sink started, published to from here, recorded, decoded and stopped.
#
# Usage: tools/e2e-cluster.sh --sink-host HOST [--kubeconfig FILE] [--operator-image IMAGE] [--relay-image IMAGE]
#                             [--gateway-host HOST] [--service-type NodePort|LoadBalancer|ClusterIP]
#                             [--set KEY=VALUE]... [--keep-logs] [--local-only]
#   --sink-host HOST      where pods reach this machine (the relay pushes to rtmp://HOST:SINKPORT/sink)
#   --gateway-host HOST   where this machine reaches the gateway; default: the gateway Service's load balancer
#                         address, or (NodePort) the address of a node that runs a gateway pod
#   --operator-image, --relay-image   default ghcr.io/liverelay/liverelay-operator and -relay, tag the appVersion
#   --service-type        the gateway Service's type (default NodePort)
#   --set                 any other chart value (e.g. image.pullPolicy=Never for images loaded into kind)
#   --keep-logs           keep the work directory (nginx's log, ffmpeg's output, the recordings)
set -euo pipefail

invoked_from=$(pwd)
script_dir=${BASH_SOURCE[0]%/*}
[[ $script_dir == "${BASH_SOURCE[0]}" ]] && script_dir=.
cd "$script_dir/.."
root=$(pwd)

operator_image=ghcr.io/liverelay/liverelay-operator
relay_image=ghcr.io/liverelay/liverelay-relay
sink_host=""
gateway_host=""
service_type=NodePort
sets=()
keep_logs=false
local_only=false
idle_seconds=30

usage() { sed -n '13,43p' "${BASH_SOURCE[0]}"; }
# The value of option $1, which must have one.
value() {
    [[ $# -ge 2 && -n $2 ]] || { echo "e2e-cluster.sh: $1 needs a value (see --help)" >&2; exit 2; }
}
while [[ $# -gt 0 ]]; do
    case $1 in
        --kubeconfig)
            value "$@"
            KUBECONFIG=$2
            [[ $2 == /* ]] || KUBECONFIG=$invoked_from/$2
            export KUBECONFIG
            shift ;;
        --operator-image) value "$@"; operator_image=$2; shift ;;
        --relay-image) value "$@"; relay_image=$2; shift ;;
        --sink-host) value "$@"; sink_host=$2; shift ;;
        --gateway-host) value "$@"; gateway_host=$2; shift ;;
        --service-type) value "$@"; service_type=$2; shift ;;
        --set) value "$@"; sets+=(--set "$2"); shift ;;
        --keep-logs) keep_logs=true ;;
        --local-only) local_only=true ;;
        -h|--help) usage; exit 0 ;;
        *) echo "e2e-cluster.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case $service_type in
    NodePort|LoadBalancer|ClusterIP) ;;
    *) echo "e2e-cluster.sh: --service-type is NodePort, LoadBalancer or ClusterIP, not $service_type" >&2; exit 2 ;;
esac
if [[ $local_only == false && -z $sink_host ]]; then
    echo "e2e-cluster.sh: --sink-host is needed: an address of this machine that pods reach (see --help)" >&2
    exit 2
fi
if [[ $service_type == ClusterIP && -z $gateway_host && $local_only == false ]]; then
    echo "e2e-cluster.sh: a ClusterIP gateway is not reachable from here: give --gateway-host" >&2
    exit 2
fi
# repository:tag of an image reference (the chart takes the two apart; a digest it does not take).
split_image() {
    local image=$1 what=$2
    if [[ $image == *@* ]]; then
        echo "e2e-cluster.sh: $what $image: the chart takes a tag, not a digest" >&2
        exit 2
    fi
    if [[ ${image##*/} == *:* ]]; then
        image_repository=${image%:*}
        image_tag=${image##*:}
    else
        image_repository=$image
        image_tag=$app_version
    fi
}
need() {
    command -v "$1" > /dev/null 2>&1 || {
        echo "e2e-cluster.sh: $1 is needed to $2 but is not installed (Debian: apt-get install $3)" >&2
        exit 1
    }
}
need kubectl "talk to the cluster" kubernetes-client
need ffmpeg "publish" ffmpeg
need ffprobe "check the recording" ffmpeg
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx ]] || need nginx "run the RTMP sink" "nginx libnginx-mod-rtmp"
rtmp_module=""
for directory in /usr/lib/nginx/modules /usr/share/nginx/modules /usr/local/lib/nginx/modules; do
    if [[ -r $directory/ngx_rtmp_module.so ]]; then rtmp_module=$directory/ngx_rtmp_module.so; break; fi
done
if [[ -z $rtmp_module ]]; then
    echo "e2e-cluster.sh: nginx's RTMP module (ngx_rtmp_module.so) is needed for the sink but is not installed" \
        "(Debian: apt-get install libnginx-mod-rtmp)" >&2
    exit 1
fi
helm=()
if [[ $local_only == false ]]; then
    if command -v helm > /dev/null 2>&1; then
        helm=(helm)
    elif command -v python3 > /dev/null 2>&1 && python3 -c 'import helm_python, yaml' > /dev/null 2>&1; then
        helm=(python3 "$root/tools/helm-release.py")
    else
        echo "e2e-cluster.sh: helm is needed to install the chart but is not installed: install the helm binary" \
            "(https://helm.sh/docs/intro/install/) or the Helm library for python3:" \
            "pip install helm-python-sdk==0.2.2 pyyaml" >&2
        exit 1
    fi
fi

app_version=$(sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' \
    charts/liverelay/Chart.yaml)
split_image "$operator_image" --operator-image
operator_repository=$image_repository operator_tag=$image_tag
split_image "$relay_image" --relay-image
relay_repository=$image_repository relay_tag=$image_tag

# --- bookkeeping: one line per step, a summary at the end.

results=()
failures=0
ok() { results+=("ok    $1: $2"); echo "e2e: ok    $1: $2"; }
fail() { results+=("FAIL  $1: $2"); failures=$((failures + 1)); echo "e2e: FAIL  $1: $2" >&2; }
skip() { results+=("skip  $1: $2"); echo "e2e: skip  $1: $2"; }
note() { echo "e2e:       $*"; }
# A step that later steps need failed: record it and end (the trap cleans up and prints the summary).
fatal() { fail "$1" "$2"; exit 1; }

# Microseconds since the epoch (bash 5's EPOCHREALTIME; whole seconds where it is missing).
clock() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        local now=${EPOCHREALTIME/[.,]/}
        echo $((10#$now))
    else
        echo $(($(date +%s) * 1000000))
    fi
}
# Seconds from START (a clock value) to now, or to END, with one decimal.
since() {
    local micros=$((${2:-$(clock)} - $1))
    printf '%d.%d s' $((micros / 1000000)) $((micros / 100000 % 10))
}
# wait_until SECONDS COMMAND...: polls COMMAND every half second until it succeeds (0) or SECONDS pass (1).
wait_until() {
    local limit=$1 start
    shift
    start=$(clock)
    while ! "$@" > /dev/null 2>&1; do
        if (($(clock) - start > limit * 1000000)); then
            return 1
        fi
        sleep 0.5
    done
}

work=$(mktemp -d "${TMPDIR:-/tmp}/liverelay-e2e.XXXXXX")
# nginx's workers (nobody, when nginx starts as root) write the recordings.
chmod 0755 "$work"
mkdir -p "$work/sink/records" "$work/sink/logs"
chmod 0777 "$work/sink/records"
sink_port=""
sink_pid=""

namespace="liverelay-e2e-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
release=$namespace
stream=e2e
installed=false
stream_created=false
kube() { kubectl -n "$namespace" "$@"; }

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    local pid_file
    for pid_file in "$work"/publish-*.pid; do
        [[ -e $pid_file && ! -e ${pid_file%.pid}.exit ]] && kill "$(cat "$pid_file")" 2> /dev/null
    done
    if [[ $stream_created == true ]]; then
        note "cleanup: deleting LiveStream $stream"
        kube delete livestream "$stream" --ignore-not-found --timeout=60s > /dev/null 2>&1 ||
            kube patch livestream "$stream" --type merge -p '{"metadata":{"finalizers":null}}' > /dev/null 2>&1
    fi
    if [[ $installed == true ]]; then
        note "cleanup: uninstalling release $release and deleting namespace $namespace"
        "${helm[@]}" uninstall "$release" --namespace "$namespace" --ignore-not-found --wait --timeout 3m \
            > /dev/null 2>&1
        kubectl delete namespace "$namespace" --ignore-not-found --timeout=180s > /dev/null 2>&1
    fi
    if [[ -n $sink_pid ]]; then
        kill "$sink_pid" 2> /dev/null
        wait "$sink_pid" 2> /dev/null
    fi
    echo
    if [[ $local_only == true ]]; then echo "e2e: summary"; else echo "e2e: summary (namespace $namespace)"; fi
    printf '  %s\n' ${results[@]+"${results[@]}"}
    if [[ $keep_logs == true || $failures -gt 0 ]]; then
        echo "e2e: logs and recordings are in $work"
    else
        rm -rf "$work"
    fi
    if [[ $failures -gt 0 ]]; then
        echo "e2e: $failures step(s) failed" >&2
        exit 1
    fi
    if [[ $status -ne 0 ]]; then
        echo "e2e: ended early (exit $status)" >&2
        exit "$status"
    fi
    echo "e2e: every step passed"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the sink: nginx-rtmp on this machine, every interface, an ephemeral port, recording what it gets.

start_sink() {
    local attempt
    for attempt in 1 2 3 4 5 6 7 8; do
        sink_port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        cat > "$work/sink/nginx.conf" <<EOF
load_module $rtmp_module;
worker_processes 1;
pid $work/sink/logs/nginx.pid;
error_log $work/sink/logs/error.log info;
events { worker_connections 256; }
rtmp {
    server {
        listen 0.0.0.0:$sink_port;
        application sink {
            live on;
            record all;
            record_path $work/sink/records;
            record_unique on;
        }
    }
}
EOF
        : > "$work/sink/logs/error.log"
        "$nginx" -p "$work/sink" -c "$work/sink/nginx.conf" -e "$work/sink/logs/error.log" \
            -g 'daemon off; master_process on;' > "$work/sink/logs/stderr" 2>&1 &
        sink_pid=$!
        for _ in $(seq 1 50); do
            if ! kill -0 "$sink_pid" 2> /dev/null; then break; fi
            if (exec 3<> "/dev/tcp/127.0.0.1/$sink_port") 2> /dev/null; then
                return 0
            fi
            sleep 0.1
        done
        kill "$sink_pid" 2> /dev/null
        wait "$sink_pid" 2> /dev/null || true
        sink_pid=""
        if ! grep -q "Address already in use" "$work/sink/logs/error.log" "$work/sink/logs/stderr"; then
            echo "e2e-cluster.sh: nginx did not start (attempt $attempt):" >&2
            tail -5 "$work/sink/logs/error.log" "$work/sink/logs/stderr" >&2
            return 1
        fi
    done
    return 1
}

# recording: the newest recording at the sink; recorded_seconds: its duration in whole seconds.
recording=""
find_recording() {
    local file
    recording=""
    for file in "$work"/sink/records/*.flv; do
        [[ -s $file ]] || continue
        if [[ -z $recording || $file -nt $recording ]]; then recording=$file; fi
    done
}
recorded_seconds() {
    [[ -n $recording ]] || { echo 0; return; }
    local duration
    duration=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$recording" 2> /dev/null |
        head -1)
    duration=${duration%%.*}
    echo "${duration:-0}"
}
recorded_at_least() {
    find_recording
    [[ $(recorded_seconds) -ge $1 ]]
}
decodes() {
    local errors
    errors=$(ffmpeg -hide_banner -nostdin -v error -i "$1" -map 0:v:0 -f null - 2>&1) && [[ -z $errors ]]
}
codec_of() {
    ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,width,height -of csv=p=0 "$1" 2> /dev/null
}

# publish NAME SECONDS URL: ffmpeg publishes its test pattern in the background, its output in
# $work/publish-NAME.log, its pid in .pid and, once it has ended, its exit status in .exit.
publish() {
    local log=$work/publish-$1.log
    rm -f "$log.exit"
    (
        ffmpeg -hide_banner -nostdin -re -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine \
            -c:v libx264 -g 60 -c:a aac -t "$2" -f flv "$3" > "$log" 2>&1 &
        echo $! > "$log.pid"
        status=0
        wait $! || status=$?
        echo "$status" > "$log.exit"
    ) &
}
published() { [[ -s $work/publish-$1.log.exit ]]; }
# Waits until the publish NAME ends and returns ffmpeg's exit status.
publish_status() {
    while ! published "$1"; do sleep 0.2; done
    return "$(cat "$work/publish-$1.log.exit")"
}
stop_publish() { published "$1" || kill "$(cat "$work/publish-$1.log.pid")" 2> /dev/null || true; }
# The last line of the publish NAME's output.
publish_said() { grep -v '^[[:space:]]*$' "$work/publish-$1.log" | tail -1; }

if ! start_sink; then
    fatal "sink" "nginx-rtmp did not start on this machine ($work/sink/logs)"
fi
ok "sink" "nginx-rtmp listens on 0.0.0.0:$sink_port (pid $sink_pid)"

if [[ $local_only == true ]]; then
    start=$(clock)
    publish local 3 "rtmp://127.0.0.1:$sink_port/sink/local-check"
    if publish_status local; then
        ok "publish to the sink" "3 s test pattern from this machine in $(since "$start")"
    else
        fail "publish to the sink" "ffmpeg failed: $(publish_said local)"
    fi
    wait_until 10 recorded_at_least 2 || true
    if [[ -n $recording ]] && decodes "$recording"; then
        ok "recording" "$(recorded_seconds) s of $(codec_of "$recording") video, decodes (${recording##*/})"
    else
        fail "recording" "no decodable recording in $work/sink/records"
    fi
    kill "$sink_pid"
    wait "$sink_pid" 2> /dev/null || true
    sink_pid=""
    ok "sink stopped" "nginx-rtmp ended"
    exit 0
fi

# --- the cluster

if ! kubectl cluster-info --request-timeout=10s > /dev/null 2>&1; then
    context=$(kubectl config current-context 2> /dev/null || echo none)
    fatal "cluster" "no cluster reachable with kubectl (context $context)"
fi
if ! kubectl get crd scaledobjects.keda.sh > /dev/null 2>&1; then
    fatal "cluster" "KEDA is not installed (no CRD scaledobjects.keda.sh): run tools/install-keda.sh first"
fi
nodes=$(kubectl get nodes --no-headers 2> /dev/null | wc -l)
ok "cluster" "context $(kubectl config current-context), $nodes node(s), KEDA installed"
others=$(kubectl get deployments --all-namespaces -l app.kubernetes.io/name=liverelay-operator \
    -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {end}' 2> /dev/null || true)
if [[ -n $others ]]; then
    note "another liverelay operator runs ($others):" \
        "if it serves every namespace, it reconciles this check's stream too"
fi

start=$(clock)
installed=true
if ! "${helm[@]}" upgrade --install "$release" "$root/charts/liverelay" --namespace "$namespace" --create-namespace \
    --set keda.enabled=true --set gateway.service.type="$service_type" --set streamNamespace="$namespace" \
    --set image.repository="$operator_repository" --set image.tag="$operator_tag" \
    --set relayImage.repository="$relay_repository" --set relayImage.tag="$relay_tag" \
    ${sets[@]+"${sets[@]}"} --wait --timeout 5m > "$work/install.log" 2>&1; then
    tail -5 "$work/install.log" >&2
    kube get pods -o wide >&2 2> /dev/null || true
    fatal "install" \
        "the chart did not install, or its operator and gateway did not become available ($work/install.log)"
fi
ok "install" "release $release in namespace $namespace, operator and gateway available in $(since "$start")"
gateway_service="$release-gateway"

# The stream: its ingest key and the sink's key in Secrets, the target this machine's sink.
ingest_key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
sink_key="e2e-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
sink_address=$sink_host
[[ $sink_host == *:* && $sink_host != \[* ]] && sink_address="[$sink_host]"
start=$(clock)
stream_created=true
if ! kube apply -f - > "$work/stream.log" 2>&1 <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: $stream-ingest
type: Opaque
stringData:
  streamKey: "$ingest_key"
---
apiVersion: v1
kind: Secret
metadata:
  name: $stream-sink
type: Opaque
stringData:
  key: "$sink_key"
---
apiVersion: liverelay.io/v1alpha1
kind: LiveStream
metadata:
  name: $stream
spec:
  ingest:
    app: live
    streamKeySecretRef: { name: $stream-ingest, key: streamKey }
    allowedSourceRanges: ["0.0.0.0/0", "::/0"]
  targets:
    - name: sink
      url: rtmp://$sink_address:$sink_port/sink
      streamKeySecretRef: { name: $stream-sink, key: key }
  preview:
    enabled: false
  scaling:
    minReplicas: 0
    idleSeconds: $idle_seconds
EOF
then
    fatal "stream" "kubectl apply of the LiveStream and its Secrets failed: $(tail -1 "$work/stream.log")"
fi
phase() { kube get livestream "$stream" -o jsonpath='{.status.phase}' 2> /dev/null; }
replicas() { kube get deployment "ls-$stream" -o jsonpath='{.spec.replicas}' 2> /dev/null; }
ready_replicas() {
    local ready
    ready=$(kube get deployment "ls-$stream" -o jsonpath='{.status.readyReplicas}' 2> /dev/null)
    echo "${ready:-0}"
}
phase_is() { [[ $(phase) == "$1" ]]; }
phase_is_not() { [[ $(phase) != "$1" ]]; }
relay_idle() { [[ $(replicas) == 0 && $(ready_replicas) == 0 ]]; }
relay_scaled_to_zero() { [[ $(replicas) == 0 ]]; }
stream_port() { kube get livestream "$stream" -o jsonpath='{.status.port}' 2> /dev/null; }
has_stream_port() { [[ -n $(stream_port) ]]; }
children_exist() {
    kube get deployment "ls-$stream" > /dev/null 2>&1 && kube get service "ls-$stream" > /dev/null 2>&1 &&
        kube get scaledobjects.keda.sh "ls-$stream" > /dev/null 2>&1
}
gateway_has_port() {
    kube get service "$gateway_service" -o jsonpath='{.spec.ports[*].port}' 2> /dev/null | tr ' ' '\n' |
        grep -qx "$1"
}
if ! wait_until 120 has_stream_port; then
    conditions=$(kube get livestream "$stream" -o jsonpath='{.status.conditions}')
    fatal "stream" "LiveStream $stream got no port in 120 s: $conditions"
fi
port=$(stream_port)
if ! wait_until 120 children_exist || ! wait_until 60 gateway_has_port "$port"; then
    fatal "stream" \
        "the relay Deployment, Service and ScaledObject ls-$stream, or the gateway's port $port, did not appear in 180 s"
fi
ok "stream" \
    "LiveStream $stream has port $port, ls-$stream children and the gateway port in $(since "$start") (phase $(phase))"

# Where this machine reaches the gateway.
if [[ -z $gateway_host ]]; then
    if [[ $service_type == LoadBalancer ]]; then
        lb_address() {
            kube get service "$gateway_service" \
                -o jsonpath='{.status.loadBalancer.ingress[0].ip}{.status.loadBalancer.ingress[0].hostname}'
        }
        lb_address_known() { [[ -n $(lb_address) ]]; }
        wait_until 300 lb_address_known ||
            fatal "gateway address" \
                "Service $gateway_service has no load balancer address after 300 s (give --gateway-host)"
        gateway_host=$(lb_address)
    else
        # externalTrafficPolicy Local: a node that runs a gateway pod.
        gateway_host=$(kube get pods -l "app.kubernetes.io/name=liverelay-gateway,app.kubernetes.io/instance=$release" \
            --field-selector=status.phase=Running -o jsonpath='{.items[0].status.hostIP}' 2> /dev/null || true)
        if [[ -z $gateway_host ]]; then
            gateway_host=$(kubectl get nodes \
                -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}' | cut -d' ' -f1)
        fi
    fi
fi
[[ -n $gateway_host ]] || fatal "gateway address" "found none (give --gateway-host)"
gateway_address=$gateway_host
[[ $gateway_host == *:* && $gateway_host != \[* ]] && gateway_address="[$gateway_host]"
ingest_url="rtmp://$gateway_address:$port/live"
ok "gateway address" "$ingest_url ($service_type)"

# 3. Nobody publishes: no relay runs.
start=$(clock)
if wait_until $((idle_seconds + 60)) relay_idle; then
    ok "relay at 0 before publish" "ls-$stream has 0 replicas (after $(since "$start"))"
else
    fail "relay at 0 before publish" "ls-$stream has $(replicas) replica(s) after $((idle_seconds + 60)) s"
fi

# 4. Publish 20 s: the relay starts from zero, the stream goes Live, the sink records.
start=$(clock)
publish 20s 20 "$ingest_url/$ingest_key"
scaled="" ready="" live=""
while ! published 20s; do
    now=$(clock)
    [[ -z $scaled && $(replicas) -ge 1 ]] && scaled=$(since "$start" "$now")
    [[ -z $ready && $(ready_replicas) -ge 1 ]] && ready=$(since "$start" "$now")
    [[ -z $live && $(phase) == Live ]] && live=$(since "$start" "$now")
    [[ -n $scaled && -n $ready && -n $live ]] && break
    sleep 0.5
done
status=0
publish_status 20s || status=$?
if [[ -z $live ]] && wait_until 15 phase_is Live; then live="after the publish ended"; fi
if [[ $status -ne 0 ]]; then
    fail "publish 20 s" "ffmpeg exited with $status: $(publish_said 20s)"
else
    ok "publish 20 s" "ffmpeg published for $(since "$start") and exited cleanly"
fi
if [[ -n $scaled && -n $ready ]]; then
    ok "relay 0 -> 1" "scaled to 1 after ${scaled}, ready after ${ready} (from the encoder's connect)"
else
    fail "relay 0 -> 1" "replicas $(replicas), ready $(ready_replicas) during the publish"
fi
if [[ -n $live ]]; then
    ok "phase Live" "status.phase Live after $live"
else
    fail "phase Live" "status.phase was $(phase) throughout the publish"
fi
if wait_until 20 recorded_at_least 15 && decodes "$recording"; then
    ok "video at the sink" "$(recorded_seconds) s of $(codec_of "$recording") video, decodes"
else
    fail "video at the sink" "$(recorded_seconds) s recorded (need 15, decodable); relay's targets:" \
        "$(kube get livestream "$stream" -o jsonpath='{.status.targets}')"
fi

# 5. Idle: KEDA scales the relay back to zero.
start=$(clock)
limit=$((idle_seconds + 60))
if wait_until "$limit" relay_scaled_to_zero; then
    ok "relay 1 -> 0" "back at 0 replicas $(since "$start") after the publish ended (limit $limit s)"
else
    fail "relay 1 -> 0" "still $(replicas) replica(s) $limit s after the publish ended"
fi

# 6. Go Offline: a publish is refused, with the reason.
start=$(clock)
kube patch livestream "$stream" --type merge -p '{"spec":{"suspend":true}}' > /dev/null
if wait_until 60 phase_is Suspended; then
    ok "suspend" "phase Suspended $(since "$start") after spec.suspend: true"
else
    fail "suspend" "phase $(phase) 60 s after spec.suspend: true"
fi
sleep 3 # the gateway watches the stream itself; give its watch a moment
publish suspended 5 "$ingest_url/$ingest_key"
refused=0
publish_status suspended || refused=$?
if [[ $refused -eq 0 ]]; then
    fail "publish while suspended" "the publish was not refused (ffmpeg exited 0)"
elif grep -qi suspend "$work/publish-suspended.log"; then
    ok "publish while suspended" \
        "refused, and ffmpeg says why: $(grep -i suspend "$work/publish-suspended.log" | tail -1)"
else
    fail "publish while suspended" \
        "refused, but ffmpeg's output does not say why (no \"suspend\"): $(publish_said suspended)"
fi

# 7. Suspend while live: the publisher is cut off.
kube patch livestream "$stream" --type merge -p '{"spec":{"suspend":false}}' > /dev/null
if ! wait_until 60 phase_is_not Suspended; then
    fail "suspend while live" "the stream stayed Suspended 60 s after spec.suspend: false"
else
    sleep 3
    start=$(clock)
    publish 60s 60 "$ingest_url/$ingest_key"
    if ! wait_until 120 phase_is Live; then
        fail "suspend while live" "the 60 s publish did not make the stream Live within 120 s (phase $(phase))"
        stop_publish 60s
    else
        note "the 60 s publish is Live after $(since "$start"); suspending"
        suspended_at=$(clock)
        kube patch livestream "$stream" --type merge -p '{"spec":{"suspend":true}}' > /dev/null
        if wait_until 5 published 60s; then
            ok "suspend while live" "ffmpeg ended $(since "$suspended_at") after spec.suspend: true (limit 5 s)"
        elif wait_until 25 published 60s; then
            fail "suspend while live" "ffmpeg ended only $(since "$suspended_at") after spec.suspend: true (limit 5 s)"
        else
            fail "suspend while live" "ffmpeg still publishing 30 s after spec.suspend: true"
            stop_publish 60s
        fi
    fi
fi

# 8. Delete the stream: its children and its gateway port go with it.
start=$(clock)
if kube delete livestream "$stream" --timeout=120s > /dev/null 2>&1; then
    stream_created=false
    leftovers() {
        local left=""
        kube get deployment "ls-$stream" > /dev/null 2>&1 && left+="Deployment "
        kube get service "ls-$stream" > /dev/null 2>&1 && left+="Service "
        kube get scaledobjects.keda.sh "ls-$stream" > /dev/null 2>&1 && left+="ScaledObject "
        gateway_has_port "$port" && left+="gateway-port-$port "
        echo "$left"
    }
    nothing_left() { [[ -z $(leftovers) ]]; }
    if wait_until 60 nothing_left; then
        ok "delete stream" \
            "LiveStream, Deployment, Service and ScaledObject ls-$stream and gateway port $port gone in $(since "$start")"
    else
        fail "delete stream" "still there 60 s after the LiveStream went: $(leftovers)"
    fi
else
    finalizers=$(kube get livestream "$stream" -o jsonpath='{.metadata.finalizers}' 2> /dev/null)
    fail "delete stream" "LiveStream $stream not deleted within 120 s (finalizers: $finalizers)"
fi

# 9. Uninstall.
start=$(clock)
if "${helm[@]}" uninstall "$release" --namespace "$namespace" --wait --timeout 5m > "$work/uninstall.log" 2>&1 &&
    kubectl delete namespace "$namespace" --timeout=180s > /dev/null 2>&1; then
    installed=false
    ok "uninstall" "release uninstalled and namespace $namespace deleted in $(since "$start")"
else
    fail "uninstall" "$(tail -1 "$work/uninstall.log")"
fi
