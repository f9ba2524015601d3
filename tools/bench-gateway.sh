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
# The gateway's cost and the cold start, measured on this machine.
#
#   1. Steady state, for each stream count: the same publishing and playing client (liverelay-bench) on three paths,
#      one after the other, all into one nginx-rtmp sink:
#        direct    bench -> sink                                   (the baseline)
#        liverelay bench -> liverelay relay (one process)  -> sink
#        gateway   bench -> liverelay local (gateway, one relay process per stream) -> sink
#        shared    the same, through the gateway's shared port (--shared-port), which routes by stream key
#        tls       the same as gateway, published with rtmps:// (the gateway terminates TLS; a certificate made
#                  for the run)
#      Latency per message and CPU of the measured process tree. The gateway's own CPU (the local-mode process
#      without its relays) is read from /proc as well.
#   2. Starts: from the encoder's TCP connect to the first media message at the sink, with the relay at zero (cold:
#      local mode starts it while the gateway holds the connection) and with it running (warm), alternating.
#
# Usage: tools/bench-gateway.sh [--out DIR] [--seconds N] [--streams "1 10"] [--starts N] [--skip-build]
#                               [--wait-for-builds SECONDS] [--scratch-path DIR]
# Needs: swift, ffmpeg, nginx with libnginx-mod-rtmp, curl, python3, openssl, Linux /proc. Leaves nothing running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

out="$root/.build/bench-gateway"
seconds=30
stream_counts="1 10"
starts=10
skip_build=false
wait_for_builds=300
scratch=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --streams) stream_counts=$2; shift 2 ;;
        --starts) starts=$2; shift 2 ;;
        --wait-for-builds) wait_for_builds=$2; shift 2 ;;
        --skip-build) skip_build=true; shift ;;
        --scratch-path) scratch=(--scratch-path "$2"); shift 2 ;;
        -h | --help) sed -n '/^# The gateway.s cost/,/^# Needs:/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

rtmp_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
for tool in swift ffmpeg nginx curl python3; do
    command -v "$tool" >/dev/null || { echo "bench-gateway: $tool is not installed" >&2; exit 1; }
done
[[ -f $rtmp_module ]] || { echo "bench-gateway: $rtmp_module is missing (apt-get install libnginx-mod-rtmp)" >&2; exit 1; }

log() { printf '%s bench-gateway: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# shellcheck source=tools/bench-common.sh
source "$root/tools/bench-common.sh"

bin=$(release_bin "$skip_build" ${scratch[@]+"${scratch[@]}"})
bench="$bin/liverelay-bench"
relay="$bin/liverelay"

input="$work/input.flv"
log "making the input with ffmpeg"
make_input "$input" $((seconds + 10))
# The gateway's certificate for the tls path, made for this run.
make_certificate

sink_port=$(free_port)
printf '        application sink { live on; }\n' | nginx_conf "$work/sink" "$sink_port"
start_nginx "$work/sink"
sink_pid=$started
wait_for_port "$sink_port"
sink="rtmp://127.0.0.1:$sink_port/sink"

mkdir -p "$out"
rm -f "$out"/*.json "$out"/starts.jsonl
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "liverelay: $(git describe --always --dirty 2>/dev/null || echo unknown)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "seconds per path: $seconds; streams: $stream_counts; starts: $starts of each"
} >"$out/machine.txt"

# One LiveStream per stream for local mode, each with a fixed port, its key and one target in the sink.
local_yaml() {
    local count=$1 tag=$2 scaling=$3
    for i in $(seq "$count"); do
        [[ $i -eq 1 ]] || echo "---"
        cat <<YAML
apiVersion: liverelay.io/v1alpha1
kind: LiveStream
metadata: { name: s$i }
spec:
  ingest: { port: ${ports[$i]}, streamKeySecretRef: { name: s$i-key, key: k } }
  targets: [ { name: sink, url: "$sink/g-$tag-$i" } ]
  preview: { enabled: false }
  scaling: $scaling
---
apiVersion: v1
kind: Secret
metadata: { name: s$i-key }
stringData: { k: "$(cat "$dir/keys/s$i")" }
YAML
    done
}

# A free port for --shared-port: outside local mode's --port-range (20000-59999, where free_port picks the streams'
# ports) and above Linux's ephemeral ports (up to 60999).
shared_free_port() {
    local port
    while true; do
        port=$((61000 + RANDOM % 4000))
        if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

start_local() {
    local file=$1 http_port=$2 shared_port=$3
    "$relay" local -f "$file" --listen-host 127.0.0.1 --port-range 20000-59999 --http-listen "127.0.0.1:$http_port" \
        --shared-port "$shared_port" --tls-cert "$work/tls.crt" --tls-key "$work/tls.key" \
        --state-dir "$dir/state" --relay-log-level warning --log-level warning \
        >"$dir/local.log" 2>&1 &
    local_pid=$!
    pids+=("$local_pid")
    wait_for_port "$http_port"
}

for n in $stream_counts; do
    tag="n$n"
    dir="$work/$tag"
    mkdir -p "$dir/keys"
    ports=()
    for i in $(seq "$n"); do
        head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$dir/keys/s$i"
        ports[i]=$(free_port)
    done
    note=$(quiet_note)
    log "steady state, $n streams ($note)"

    for i in $(seq "$n"); do
        echo "$sink/d-$tag-$i $sink/d-$tag-$i"
    done >"$dir/direct.txt"
    "$bench" run --input "$input" --streams-file "$dir/direct.txt" --label direct --seconds "$seconds" \
        --sample-pid "$sink_pid" --note "$note" --output "$out/$tag-direct.json"

    relay_port=$(free_port)
    for i in $(seq "$n"); do
        [[ $i -eq 1 ]] || echo "---"
        printf 'apiVersion: liverelay.io/v1alpha1\nkind: LiveStream\nmetadata: { name: s%s }\n' "$i"
        # The key is the file $dir/keys/s$i: the Secret "keys", key "s$i", under --secrets-dir "$dir".
        printf 'spec:\n  ingest: { app: live, streamKeySecretRef: { name: keys, key: s%s } }\n' "$i"
        printf '  targets: [ { name: sink, url: "%s/r-%s-%s" } ]\n  preview: { enabled: false }\n' "$sink" "$tag" "$i"
    done >"$dir/relay.yaml"
    for i in $(seq "$n"); do
        echo "rtmp://127.0.0.1:$relay_port/live/$(cat "$dir/keys/s$i") $sink/r-$tag-$i"
    done >"$dir/liverelay.txt"
    "$relay" relay --listen "127.0.0.1:$relay_port" --http-listen none --config "$dir/relay.yaml" \
        --secrets-dir "$dir" --log-level warning &
    relay_pid=$!
    pids+=("$relay_pid")
    wait_for_port "$relay_port"
    "$bench" run --input "$input" --streams-file "$dir/liverelay.txt" --label liverelay --seconds "$seconds" \
        --sample-pid "$relay_pid" --note "$note" --output "$out/$tag-liverelay.json"
    stop "$relay_pid"

    # Relays kept running (minReplicas 1) so that this measures the proxy, not starts.
    local_yaml "$n" "$tag" "{ minReplicas: 1, idleSeconds: 60 }" >"$dir/streams.yaml"
    http_port=$(free_port)
    shared_port=$(shared_free_port)
    start_local "$dir/streams.yaml" "$http_port" "$shared_port"
    wait_relay "$http_port" yes
    wait_for_port "$shared_port"
    # The same streams on their own ports, then on the shared port, then with TLS on their own ports (each stream's
    # relay gets a new publish).
    for label in gateway shared tls; do
        for i in $(seq "$n"); do
            port=${ports[$i]} scheme=rtmp
            [[ $label != shared ]] || port=$shared_port
            [[ $label != tls ]] || scheme=rtmps
            echo "$scheme://127.0.0.1:$port/live/$(cat "$dir/keys/s$i") $sink/g-$tag-$i"
        done >"$dir/$label.txt"
        before=$(cpu_ticks "$local_pid")
        "$bench" run --input "$input" --streams-file "$dir/$label.txt" --label "$label" --seconds "$seconds" \
            --sample-pid "$local_pid" --note "$note" --output "$out/$tag-$label.json"
        after=$(cpu_ticks "$local_pid")
        # Resident memory of the gateway process alone (not its relays) at the end of the path: it only grows
        # from path to path, so a path's growth over the one before is what its connections kept.
        rss=$(awk '/VmRSS/ {print $2}' "/proc/$local_pid/status")
        python3 -c "t = ($after - $before) / $(getconf CLK_TCK); print('gateway process alone ($label port), $n streams: %.4f CPU s per stream-minute (%.2f s over $seconds s); resident %.1f MiB after it' % (t / $n / ($seconds / 60), t, $rss / 1024))" \
            | tee -a "$out/gateway-cpu.txt" >&2
    done
    stop "$local_pid"
done

log "starts: $starts cold and $starts warm, alternating"
dir="$work/starts"
mkdir -p "$dir/keys"
head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$dir/keys/s1"
ports=()
ports[1]=$(free_port)
local_yaml 1 starts "{ minReplicas: 0, idleSeconds: 2 }" >"$dir/streams.yaml"
http_port=$(free_port)
start_local "$dir/streams.yaml" "$http_port" "$(shared_free_port)"
echo "rtmp://127.0.0.1:${ports[1]}/live/$(cat "$dir/keys/s1") $sink/g-starts-1" >"$dir/start.txt"
for _ in $(seq "$starts"); do
    wait_relay "$http_port" no
    "$bench" start --input "$input" --streams-file "$dir/start.txt" --label cold >>"$out/starts.jsonl"
    "$bench" start --input "$input" --streams-file "$dir/start.txt" --label warm >>"$out/starts.jsonl"
done
stop "$local_pid"
stop "$sink_pid"

"$bench" report "$out"/*.json >"$out/report.md"
python3 - "$out/starts.jsonl" >>"$out/report.md" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("\n| Start | Runs | Connect → publish accepted, median (min–max) ms | Connect → first media at the sink, median (min–max) ms |")
print("|---|---:|---|---|")
for label in ("cold", "warm"):
    runs = [r for r in rows if r["label"] == label]
    if not runs:
        continue
    def cell(key):
        values = [r[key] for r in runs]
        return "%.0f (%.0f–%.0f)" % (statistics.median(values), min(values), max(values))
    print("| %s | %d | %s | %s |" % (label, len(runs), cell("publishAcceptedMilliseconds"), cell("firstMediaMilliseconds")))
PY
{
    echo
    cat "$out/gateway-cpu.txt"
} >>"$out/report.md"
log "results in $out (report.md, machine.txt, one JSON per path, starts.jsonl)"
cat "$out/report.md"
