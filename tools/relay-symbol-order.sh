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
# Writes tools/relay-symbol-order.txt: the functions a relay in a pod runs, which the images' release build
# (images-common.sh's release_build) hands lld as --symbol-ordering-file so that they lie together in the binary.
#
# Why: Linux maps a binary's code into a process 64 KiB at a time (fault-around), and an idle relay runs 7,692
# functions, at least 1.4 MiB of code, spread over 315 of the binary's 64 KiB blocks: 19.7 MiB resident for 1.4 MiB
# run. Laid out together they fill a few megabytes. A function missing from the list (new code) still works; it just lies
# with the rest. Run this again when the relay's code or its dependencies change much; BENCHMARKS.md ("Relay
# memory") shows the effect with tools/bench-relay-memory.sh.
#
# How: valgrind's callgrind runs the relay (release, unstripped, debug information removed since valgrind cannot
# read Swift's) through what a pod's relay does: start from a LiveStream file (JSON, as the operator writes it)
# with one target (an nginx-rtmp sink), answer the probes and the API (/healthz, /readyz, /metrics,
# /api/v1/streams), take a 6 s publish from ffmpeg and push it to the sink, then stop on SIGTERM. Every function of
# the binary that ran is listed, in the order callgrind first names it: first those an idle relay runs (the probes
# and 5 s of its timers, between two dumps asked by vgdb, the first once it answered /healthz), then those a live
# one runs besides, then those that only start-up ran. A relay unmaps start-up's pages once it listens (CodePages in
# the ResidentMemory module), so what it runs from then on lies together at the start, the idle part first (each
# fault maps about 100 KiB: an idle relay's functions spread over the live ones' would map them all), and
# start-up's code after it.
#
# The same binary is the operator (the chart's operator image holds it too), and an operator at rest unmaps the code
# of the burst it ran (Operator's MemoryTrimmer): what it runs at rest (its watches, timers, probes and /metrics)
# then faults back in blocks of about 100 KiB each, 10.7 MiB for about 110 faults when those functions lay where the
# relay's order left them. So the list goes on with those: liverelay-operator-bench creates 100 LiveStreams on the
# in-process test server with `liverelay operator` under callgrind, which dumps once the operator settled and again
# after 20 s at rest (probes and /metrics asked meanwhile, as a kubelet and Prometheus would); the functions of
# that second part come right after the relay's, before the relay's start-up.
#
# Usage: tools/relay-symbol-order.sh [--binary PATH] [--operator-bench PATH] [--out FILE]
#   --binary PATH          an unstripped liverelay (default: built with release_build --unstripped)
#   --operator-bench PATH  liverelay-operator-bench (default: built with release_build --unstripped)
#   --out FILE             default tools/relay-symbol-order.txt
# Needs: swift (unless --binary), valgrind, ffmpeg, nginx with libnginx-mod-rtmp, curl, binutils. Leaves nothing
# running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
binary=""
operator_bench=""
out="$root/tools/relay-symbol-order.txt"
while [[ $# -gt 0 ]]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --operator-bench) operator_bench=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h | --help) sed -n '/^# Writes/,/^# running/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

# shellcheck source=tools/images-common.sh
source "$root/tools/images-common.sh"
# shellcheck source=tools/bench-common.sh
source "$root/tools/bench-common.sh"
log() { echo "relay-symbol-order: $*" >&2; }
wait_for_builds=0
rtmp_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
[[ -f $rtmp_module ]] || { log "needs nginx's RTMP module (Debian package libnginx-mod-rtmp)"; exit 1; }
for tool in valgrind vgdb ffmpeg nginx curl strip; do
    command -v "$tool" >/dev/null || { log "needs $tool"; exit 1; }
done

if [[ -z $binary ]]; then
    log "building the release binary with its symbols"
    release_build --unstripped >&2
    binary="$(release_build --unstripped --show-bin-path)/liverelay"
fi
if [[ -z $operator_bench ]]; then
    log "building liverelay-operator-bench"
    release_build --unstripped --product liverelay-operator-bench >&2
    operator_bench="$(release_build --unstripped --show-bin-path)/liverelay-operator-bench"
fi
mkdir -p "$work/bin"
strip --strip-debug -o "$work/bin/liverelay" "$binary"

sink_port=$(free_port)
nginx_conf "$work/sink" "$sink_port" <<EOF
        application live { live on; }
EOF
start_nginx "$work/sink"
wait_for_port "$sink_port"

# JSON, as the operator writes a relay's ConfigMap.
key=$(write_relay_files "$work/relay" profile "$sink_port" profile-out false json)
relay_port=$(free_port)
http_port=$(free_port)
log "running the relay under callgrind (about 50 times slower than it is)"
valgrind --tool=callgrind --demangle=no --compress-strings=no --callgrind-out-file="$work/callgrind.out" \
    "$work/bin/liverelay" relay --config "$work/relay/livestream.yaml" --secrets-dir "$work/relay/secrets" \
    --listen "127.0.0.1:$relay_port" --http-listen "127.0.0.1:$http_port" --log-level warning \
    >"$work/relay.log" 2>&1 &
relay=$!
pids+=("$relay")
for _ in $(seq 1200); do
    curl -fsS "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1 && break
    kill -0 "$relay" 2>/dev/null || { cat "$work/relay.log" >&2; log "the relay exited"; exit 1; }
    sleep 0.1
done
# Start-up is over: what ran so far goes into the first part of callgrind's output, what runs from now on into the
# last.
vgdb --pid="$relay" dump startup >/dev/null || { log "vgdb could not ask callgrind to dump"; exit 1; }
for path in healthz readyz metrics api/v1/streams; do
    curl -fsS "http://127.0.0.1:$http_port/$path" >/dev/null
done
# Idle: the probes above and a few seconds of the relay's own timers. What ran goes into the second part.
sleep 5
curl -fsS "http://127.0.0.1:$http_port/healthz" >/dev/null
vgdb --pid="$relay" dump idle >/dev/null || { log "vgdb could not ask callgrind to dump"; exit 1; }
ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i sine \
    -t 6 -c:v libx264 -preset ultrafast -g 60 -c:a aac -f flv "rtmp://127.0.0.1:$relay_port/live/$key" \
    >"$work/ffmpeg.log" 2>&1 || { cat "$work/ffmpeg.log" "$work/relay.log" >&2; log "ffmpeg could not publish"; exit 1; }
for path in healthz api/v1/streams metrics; do
    curl -fsS "http://127.0.0.1:$http_port/$path" >/dev/null
done
stop "$relay"
parts=("$work"/callgrind.out*)
((${#parts[@]} >= 3)) || { cat "$work/relay.log" >&2; log "callgrind wrote ${#parts[@]} parts, not 3"; exit 1; }

# The operator at rest: everything it ran until it settled goes into the first part, its rest into the second.
log "running the operator under callgrind: 100 LiveStreams, then 20 s at rest"
operator_http=$(free_port)
cat >"$work/operator-under-callgrind" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --demangle=no --compress-strings=no --callgrind-out-file="$work/operator.out" \\
    "$work/bin/liverelay" "\$@"
EOF
chmod +x "$work/operator-under-callgrind"
"$operator_bench" --streams 100 --keda --quiet-seconds 40 --settle-timeout 900 \
    --operator-http "127.0.0.1:$operator_http" --liverelay "$work/operator-under-callgrind" \
    >"$work/operator-bench.log" 2>&1 &
bench=$!
pids+=("$bench")
operator=""
for _ in $(seq 12000); do
    operator=$(sed -n 's/^settled;.*(operator pid \([0-9]*\))$/\1/p' "$work/operator-bench.log")
    [[ -n $operator ]] && break
    kill -0 "$bench" 2>/dev/null || { cat "$work/operator-bench.log" >&2; log "the operator benchmark exited"; exit 1; }
    sleep 0.1
done
[[ -n $operator ]] || { log "the operator did not settle"; exit 1; }
vgdb --pid="$operator" dump settled >/dev/null || { log "vgdb could not ask callgrind to dump"; exit 1; }
for _ in 1 2 3 4; do
    for path in healthz readyz metrics; do
        curl -fsS "http://127.0.0.1:$operator_http/$path" >/dev/null
    done
    sleep 5
done
vgdb --pid="$operator" dump rest >/dev/null || { log "vgdb could not ask callgrind to dump"; exit 1; }
wait "$bench" || { cat "$work/operator-bench.log" >&2; log "the operator benchmark failed"; exit 1; }
operator_parts=("$work"/operator.out*)
((${#operator_parts[@]} >= 3)) || { log "callgrind wrote ${#operator_parts[@]} parts of the operator's run, not 3"; exit 1; }
operator_rest=$(grep -l '^part: 2$' "${operator_parts[@]}")

# `ob=` names the object of the `fn=` lines after it; only the binary's own functions are kept, once each: what an
# idle relay runs first (the second part), then what a live one runs besides (the third), then the operator's at
# rest, then the relay's start-up (the first part) last.
functions_of() {
    awk -v binary="$work/bin/liverelay" '
        /^ob=/ { object = substr($0, 4) }
        /^fn=/ && object == binary { print substr($0, 4) }
    ' "$1"
}
relay_part() { grep -l "^part: $1\$" "${parts[@]}"; }
{
    functions_of "$(relay_part 2)"
    functions_of "$(relay_part 3)"
    functions_of "$operator_rest"
    functions_of "$(relay_part 1)"
} | awk '!seen[$0]++' >"$out"
log "$(wc -l <"$out") functions in ${out#"$root/"}"
