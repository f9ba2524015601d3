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
# liverelay against nginx-rtmp's `push`, side by side on this machine: the same ffmpeg-made input, the same
# nginx-rtmp sink, the same publishing and playing client (liverelay-bench). For each scenario (streams x fan-out)
# three paths run one after the other:
#
#   direct     liverelay-bench -> sink <- liverelay-bench                     (the baseline)
#   liverelay  liverelay-bench -> liverelay relay (one process) -> sink <- liverelay-bench
#   nginx      liverelay-bench -> nginx-rtmp with `push` -> sink <- liverelay-bench
#   splice     liverelay-bench -> the gateway's TCP splice (liverelay-bench splice) -> sink <- liverelay-bench
#              (optional, fan-out 1: the SwiftNIO floor, no RTMP work at all)
#   tls        as liverelay, published with rtmps:// (optional, labelled liverelay-tls: the relay with --tls-cert, a
#              certificate made for the run; nginx-rtmp has no rtmps:// ingest to compare with)
#
# and liverelay-bench measures per-message latency, lost messages, whether the first keyframe arrived, and the relay
# process's CPU and resident memory (nginx: master and worker summed). Results land in OUT (JSON per path and
# report.md); BENCHMARKS.md explains them.
#
# Usage: tools/bench-relay.sh [--out DIR] [--seconds N] [--scenarios "1x1 10x1 50x1 1x5 10x5"]
#                             [--paths "direct liverelay nginx"] [--wait-for-builds SECONDS] [--skip-build]
#                             [--scratch-path DIR] [--relay-args "ARGS"] [--relay-bin PATH]
#   --relay-args  extra arguments for `liverelay relay`, e.g. "--gop-cache-bytes 0" (split on spaces)
#   --relay-bin   the liverelay binary to measure instead of the one built (another build, for a before/after)
#   --baseline-bin  a second liverelay binary, measured as the path "baseline" in the same run (before/after)
#   --paths       also liverelay@BYTES and splice@BYTES: that path with reads of at most BYTES from each publisher
#                 (the relay's --ingest-read-bytes), labelled liverelay-Nk and splice-Nk, e.g.
#                 "direct splice@8192 liverelay@8192 liverelay@65536 nginx"; liverelay-slice[@BYTES] slices
#                 single-chunk payloads out of the read buffer instead of copying them
# Needs: swift, ffmpeg, nginx with libnginx-mod-rtmp, Linux /proc (and openssl for the tls path). Leaves nothing
# running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

out="$root/.build/bench-relay"
seconds=40
scenarios="1x1 10x1 50x1 1x5 10x5"
paths="direct liverelay nginx"
skip_build=false
wait_for_builds=300
scratch=()
relay_args=()
relay_bin=""
baseline_bin=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --scenarios) scenarios=$2; shift 2 ;;
        --paths) paths=$2; shift 2 ;;
        --wait-for-builds) wait_for_builds=$2; shift 2 ;;
        --skip-build) skip_build=true; shift ;;
        --scratch-path) scratch=(--scratch-path "$2"); shift 2 ;;
        --relay-args) read -r -a relay_args <<<"$2"; shift 2 ;;
        --relay-bin) relay_bin=$2; shift 2 ;;
        --baseline-bin) baseline_bin=$2; shift 2 ;;
        -h | --help) sed -n '/^# liverelay against/,/^# Needs:/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

rtmp_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
for tool in swift ffmpeg nginx; do
    command -v "$tool" >/dev/null || { echo "bench-relay: $tool is not installed" >&2; exit 1; }
done
[[ -f $rtmp_module ]] || { echo "bench-relay: $rtmp_module is missing (apt-get install libnginx-mod-rtmp)" >&2; exit 1; }

log() { printf '%s bench-relay: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# shellcheck source=tools/bench-common.sh
source "$root/tools/bench-common.sh"

# --- build
bin=$(release_bin "$skip_build" ${scratch[@]+"${scratch[@]}"})
bench="$bin/liverelay-bench"
relay=${relay_bin:-$bin/liverelay}

# --- input: 1280x720 30 fps, ~2.9 Mbit/s H.264 with a keyframe every 2 s, AAC 128k; made once per run.
input="$work/input.flv"
log "making the input with ffmpeg"
make_input "$input" $((seconds + 10))

sink_port=$(free_port)
printf '        application sink%s { live on; }\n' 1 2 3 4 5 | nginx_conf "$work/sink" "$sink_port"
start_nginx "$work/sink"
sink_pid=$started
wait_for_port "$sink_port"
sink="rtmp://127.0.0.1:$sink_port"

mkdir -p "$out"
rm -f "$out"/*.json
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "liverelay: ${relay_bin:-$(git describe --always --dirty 2>/dev/null || echo unknown)}"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "memory: $(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2-)"
    echo "kernel: $(uname -r)"
    echo "swift: $(swift --version 2>&1 | head -1)"
    echo "nginx: $(nginx -v 2>&1)"
    echo "ffmpeg: $(ffmpeg -hide_banner -version | head -1)"
    echo "seconds per path: $seconds; scenarios: $scenarios"
} >"$out/machine.txt"
cat "$out/machine.txt" >&2

run_bench() {
    local label=$1 streams_file=$2 pid=$3 tag=$4 note=$5
    "$bench" run --input "$input" --streams-file "$streams_file" --label "$label" --seconds "$seconds" \
        --sample-pid "$pid" --note "$note" --output "$out/$tag-$label.json"
}

# direct: each stream is published to the sink and played back by F players.
path_direct() {
    for i in $(seq "$n"); do
        printf '%s/sink1/d-%s-%s' "$sink" "$tag" "$i"
        for _ in $(seq "$f"); do printf ' %s/sink1/d-%s-%s' "$sink" "$tag" "$i"; done
        echo
    done >"$dir/direct.txt"
    run_bench direct "$dir/direct.txt" "$sink_pid" "$tag" "$note"
}

# liverelay: one process, one LiveStream per stream, each with its own random key and F targets.
path_liverelay() {
    relay_path "liverelay$suffix" rtmp "r$suffix" ${read_bytes:+--ingest-read-bytes "$read_bytes"}
}

# liverelay-slice: the same, with single-chunk payloads sliced out of the read buffer instead of copied.
path_liverelay-slice() {
    relay_path "liverelay-slice$suffix" rtmp "c$suffix" --no-ingest-copy-payloads \
        ${read_bytes:+--ingest-read-bytes "$read_bytes"}
}

# baseline: the same with the relay binary given by --baseline-bin (another build), for a before/after in one run.
path_baseline() {
    [[ -n $baseline_bin ]] || { echo "bench-relay: the baseline path needs --baseline-bin" >&2; exit 2; }
    relay_exec=$baseline_bin relay_path baseline rtmp b
}

# tls: the same, published with rtmps:// to a relay with a certificate (label liverelay-tls).
path_tls() {
    make_certificate
    relay_path liverelay-tls rtmps t --tls-cert "$work/tls.crt" --tls-key "$work/tls.key"
}

# The relay path as LABEL, published with SCHEME, the sink's streams named PREFIX-...; more arguments go to the relay.
relay_path() {
    local label=$1 scheme=$2 prefix=$3 relay_port relay_pid
    shift 3
    relay_port=$(free_port)
    : >"$dir/relay.yaml"
    for i in $(seq "$n"); do
        head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$dir/keys/s$i"
        {
            [[ $i -eq 1 ]] || echo "---"
            echo "apiVersion: liverelay.io/v1alpha1"
            echo "kind: LiveStream"
            echo "metadata: { name: s$i }"
            echo "spec:"
            # The key is the file $dir/keys/s$i: the Secret "keys", key "s$i", under --secrets-dir "$dir".
            echo "  ingest: { app: live, streamKeySecretRef: { name: keys, key: s$i } }"
            # nginx-rtmp's push path packages no preview either; tools/bench-preview.sh measures the preview.
            echo "  preview: { enabled: false }"
            echo "  targets:"
            for t in $(seq "$f"); do
                echo "    - { name: t$t, url: \"$sink/sink$t/$prefix-$tag-$i\" }"
            done
        } >>"$dir/relay.yaml"
        printf '%s://127.0.0.1:%s/live/%s' "$scheme" "$relay_port" "$(cat "$dir/keys/s$i")"
        for t in $(seq "$f"); do printf ' %s/sink%s/%s-%s-%s' "$sink" "$t" "$prefix" "$tag" "$i"; done
        echo
    done >"$dir/$label.txt"
    "${relay_exec:-$relay}" relay --listen "127.0.0.1:$relay_port" --http-listen 127.0.0.1:0 --config "$dir/relay.yaml" \
        --secrets-dir "$dir" --log-level warning "$@" \
        ${relay_args[@]+"${relay_args[@]}"} &
    relay_pid=$!
    pids+=("$relay_pid")
    wait_for_port "$relay_port"
    run_bench "$label" "$dir/$label.txt" "$relay_pid" "$tag" "$note"
    stop "$relay_pid"
}

# splice: the gateway's TCP splice alone, one port per stream, straight to the sink (fan-out 1 only): what NIO costs
# to move the relay's bytes before the relay does any work of its own, the floor of a SwiftNIO media path.
path_splice() {
    local ports=() splice_pid
    if [[ $f -ne 1 ]]; then
        log "splice: skipped at fan-out $f (a splice has one upstream)"
        return
    fi
    for i in $(seq "$n"); do
        ports+=("$(free_port)")
        printf 'rtmp://127.0.0.1:%s/sink1/s%s-%s-%s %s/sink1/s%s-%s-%s\n' \
            "${ports[-1]}" "$suffix" "$tag" "$i" "$sink" "$suffix" "$tag" "$i"
    done >"$dir/splice$suffix.txt"
    "$bench" splice --upstream "127.0.0.1:$sink_port" --ports "${ports[*]}" \
        ${read_bytes:+--read-bytes "$read_bytes"} &
    splice_pid=$!
    pids+=("$splice_pid")
    for port in "${ports[@]}"; do wait_for_port "$port"; done
    run_bench "splice$suffix" "$dir/splice$suffix.txt" "$splice_pid" "$tag" "$note"
    stop "$splice_pid"
}

# nginx-rtmp: `push` to F sink applications; the stream name carries over.
path_nginx() {
    local nginx_port nginx_pid
    nginx_port=$(free_port)
    {
        echo "        application live {"
        echo "            live on;"
        for t in $(seq "$f"); do echo "            push $sink/sink$t;"; done
        echo "        }"
    } | nginx_conf "$dir/nginx" "$nginx_port"
    for i in $(seq "$n"); do
        printf 'rtmp://127.0.0.1:%s/live/n-%s-%s' "$nginx_port" "$tag" "$i"
        for t in $(seq "$f"); do printf ' %s/sink%s/n-%s-%s' "$sink" "$t" "$tag" "$i"; done
        echo
    done >"$dir/nginx.txt"
    start_nginx "$dir/nginx"
    nginx_pid=$started
    wait_for_port "$nginx_port"
    run_bench nginx "$dir/nginx.txt" "$nginx_pid" "$tag" "$note"
    stop "$nginx_pid"
}

for scenario in $scenarios; do
    n=${scenario%x*}
    f=${scenario#*x}
    tag="n$n-f$f"
    dir="$work/$tag"
    mkdir -p "$dir/keys"
    # The relays (b and c) run back to back right after the baseline, under the same conditions.
    note=$(quiet_note)
    log "scenario $n streams x $f targets ($note)"
    for path in $paths; do
        # liverelay@BYTES and splice@BYTES: that path with reads of at most BYTES from each publisher, labelled
        # liverelay-Nk / splice-Nk, so that read sizes are compared in one run.
        read_bytes=""
        suffix=""
        if [[ $path == *@* ]]; then
            read_bytes=${path#*@}
            suffix="-$((read_bytes / 1024))k"
        fi
        "path_${path%%@*}"
    done
done

stop "$sink_pid"
"$bench" report "$out"/*.json >"$out/report.md"
log "results in $out (report.md, machine.txt, one JSON per path)"
cat "$out/report.md"
