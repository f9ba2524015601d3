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
# The live preview's latency and CPU, side by side with nginx-rtmp's HLS, in one run on this machine.
#
# One ffmpeg publishes a test pattern (x264 zerolatency, 2 s keyframe interval, AAC) to `liverelay relay`, which
# pushes it to nginx-rtmp with `hls on` and nginx-rtmp's HLS defaults (hls_fragment 5s, hls_playlist_length 30s).
# ffmpeg also writes the same FLV to a pipe (its tee muxer), from which Benchmarks/preview/measure.py learns when each
# frame left the publisher; measure.py reads the relay's live fragmented MP4 (`live.mp4`) and polls the relay's and
# nginx-rtmp's playlists on disk every 50 ms, and reports, per frame or segment, the time from the publisher to:
#
#   fmp4           the fragment carrying the frame received by an HTTP client of the relay (what a browser gets);
#   relay HLS      the segment holding the frame listed in the relay's index.m3u8 (newest and oldest frame of it);
#   nginx HLS      the same for nginx-rtmp's playlist (read from its hls_path).
#
# Then the relay runs the same stream with the preview off (spec.preview.enabled: false) and on, and the relay
# process's CPU time (utime + stime from /proc) over the run is compared: the preview's added CPU against the relay's
# own, over --pairs off/on pairs run alternately (the relay's own CPU varies by some 15 % from run to run). The
# preview thread's own CPU (libavformat packaging, from /proc/PID/task) is reported beside it. With the preview on,
# the relay serves one browser (live.mp4, as the preview page reads it), so the added CPU is packaging plus serving
# the preview to one browser; --hls-player adds an HLS player (the playlist over HTTP every second, and each
# segment), whose cost is that of serving 2.5 Mbit/s more to a second viewer.
#
# Usage: tools/bench-preview.sh [--seconds N] [--pairs N] [--hls-player] [--relay PATH] [--out DIR]
#   --relay: the liverelay binary (default: a release build in .build-preview, built if missing).
# Needs: ffmpeg, nginx with libnginx-mod-rtmp, python3, Linux /proc. Leaves nothing running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
seconds=40
pairs=3
hls_player=false
relay=""
out="$root/.build-preview/bench-preview"
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --pairs) pairs=$2; shift 2 ;;
        --hls-player) hls_player=true; shift ;;
        --relay) relay=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h | --help) sed -n '/^# The live preview/,/^# Needs:/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
rtmp_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
for tool in ffmpeg nginx python3; do
    command -v "$tool" >/dev/null || { echo "bench-preview: $tool is not installed" >&2; exit 1; }
done
[[ -f $rtmp_module ]] || { echo "bench-preview: $rtmp_module is missing (apt-get install libnginx-mod-rtmp)" >&2; exit 1; }
if [[ -z $relay ]]; then
    relay="$root/.build-preview/release/liverelay"
    [[ -x $relay ]] || swift build -c release --scratch-path .build-preview --product liverelay
fi
mkdir -p "$out"

log() { printf '%s bench-preview: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

wait_for_builds=0
# shellcheck source=tools/bench-common.sh
source "$root/tools/bench-common.sh"

# --- nginx-rtmp with HLS, its defaults
nginx_port=$(free_port)
mkdir -p "$work/nginx/hls"
printf '        application live { live on; hls on; hls_path %s; }\n' "$work/nginx/hls" | nginx_conf "$work/nginx" "$nginx_port"
# nginx's workers run as another user: they must write the playlist and segments.
chmod -R 777 "$work/nginx"
start_nginx "$work/nginx"
wait_for_port "$nginx_port"

# The CPU ticks of process $1's preview threads (named preview-<stream>).
preview_ticks() {
    local sum=0 task ticks
    for task in /proc/"$1"/task/*; do
        [[ $(cat "$task/comm" 2>/dev/null) == preview-* ]] || continue
        ticks=$(stat_ticks "$task/stat" 2>/dev/null) || continue
        sum=$((sum + ticks))
    done
    echo "$sum"
}

# Runs the stream once through the relay; prints the relay's CPU ms and its preview threads' CPU ms.
run() {
    local preview=$1 name=$2
    local rtmp_port http_port key=bench-ingest-$RANDOM$RANDOM
    rtmp_port=$(free_port)
    http_port=$(free_port)
    cat >"$work/relay.yaml" <<EOF
apiVersion: liverelay.io/v1alpha1
kind: LiveStream
metadata: { name: bench }
spec:
  ingest: { app: live, streamKeySecretRef: { name: bench-key, key: streamKey } }
  targets:
    - { name: nginx, url: "rtmp://127.0.0.1:$nginx_port/live", streamKeySecretRef: { name: bench-target, key: key } }
  preview: { enabled: $preview }
---
apiVersion: v1
kind: Secret
metadata: { name: bench-key }
stringData: { streamKey: "$key" }
---
apiVersion: v1
kind: Secret
metadata: { name: bench-target }
stringData: { key: "$name" }
EOF
    # The relay writes its HLS under a directory of its own in $TMPDIR (liverelay-preview-XXXXXX); measure.py reads
    # the playlist there.
    mkdir -p "$work/tmp-$name"
    TMPDIR="$work/tmp-$name" "$relay" relay --listen "127.0.0.1:$rtmp_port" --http-listen "127.0.0.1:$http_port" --config "$work/relay.yaml" \
        --log-level notice 2>"$work/relay-$name.log" &
    local relay_pid=$!
    pids+=("$relay_pid")
    wait_for_port "$rtmp_port"
    wait_for_port "$http_port"
    local start_ticks
    start_ticks=$(cpu_ticks "$relay_pid")
    # The preview thread ends with the publish: sample it while it runs.
    echo 0 >"$work/preview-ticks"
    (
        while kill -0 "$relay_pid" 2>/dev/null; do
            ticks=$(preview_ticks "$relay_pid")
            [[ $ticks -gt 0 ]] && echo "$ticks" >"$work/preview-ticks"
            sleep 0.5
        done
    ) >/dev/null &
    pids+=("$!")
    local measure_args=(--seconds "$seconds")
    if [[ $preview == true ]]; then
        measure_args+=(--fmp4 "http://127.0.0.1:$http_port/preview/bench/live.mp4"
            --hls "$work/tmp-$name/liverelay-preview-*/bench-*/index.m3u8"
            --nginx-hls "$work/nginx/hls/$name.m3u8")
        if [[ $hls_player == true ]]; then
            measure_args+=(--hls-player "http://127.0.0.1:$http_port/preview/bench/index.m3u8")
        fi
    fi
    ffmpeg -hide_banner -nostdin -nostats -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=30 \
        -re -f lavfi -i sine=frequency=440:sample_rate=44100 -t $((seconds + 5)) -map 0:v -map 1:a \
        -c:v libx264 -preset veryfast -tune zerolatency -pix_fmt yuv420p -g 60 -keyint_min 60 -sc_threshold 0 \
        -b:v 2500k -c:a aac -b:a 128k -ar 44100 -ac 2 -flags +global_header \
        -f tee "[f=flv:flvflags=no_duration_filesize]rtmp://127.0.0.1:$rtmp_port/live/$key|[f=flv]pipe:1" |
        python3 "$root/Benchmarks/preview/measure.py" "${measure_args[@]}" >"$out/latency-$name.json"
    local end_ticks
    end_ticks=$(cpu_ticks "$relay_pid")
    stop "$relay_pid"
    local hz
    hz=$(getconf CLK_TCK)
    echo "$(((end_ticks - start_ticks) * 1000 / hz)) $(($(cat "$work/preview-ticks") * 1000 / hz))"
}

runs=()
for pair in $(seq 1 "$pairs"); do
    log "pair $pair of $pairs: preview off, $seconds s"
    runs+=("$(run false off)")
    log "pair $pair of $pairs: preview on, $seconds s (latency measured)"
    runs+=("$(run true "on-$pair")")
    log "pair $pair: relay CPU ms and preview thread CPU ms, off: ${runs[-2]}; on: ${runs[-1]}"
done

python3 - "$out" "$seconds" "$hls_player" "${runs[@]}" <<'EOF'
import json, statistics, sys
out, seconds, hls_player = sys.argv[1], float(sys.argv[2]), sys.argv[3]
runs = [tuple(int(x) for x in run.split()) for run in sys.argv[4:]]


def percent(part, whole):
    # A run too short for the clock's ticks reads 0 ms: no ratio rather than a division by zero.
    return round(part * 100 / whole, 1) if whole else None


pairs = [
    {"relay_cpu_ms_preview_off": off, "relay_cpu_ms_preview_on": on, "preview_thread_cpu_ms": thread,
     "preview_added_cpu_percent_of_relay": percent(on - off, off),
     "preview_thread_cpu_percent_of_relay": percent(thread, off)}
    for (off, _), (on, thread) in zip(runs[0::2], runs[1::2])
]
off = statistics.median(p["relay_cpu_ms_preview_off"] for p in pairs)
on = statistics.median(p["relay_cpu_ms_preview_on"] for p in pairs)
latency = json.load(open(f"{out}/latency-on-{len(pairs)}.json"))
report = {
    "seconds": seconds,
    "hls_player": hls_player == "true",
    "pairs": pairs,
    "relay_cpu_ms_preview_off_median": off,
    "relay_cpu_ms_preview_on_median": on,
    "relay_cpu_percent_of_one_core_off": round(off / seconds / 10, 2),
    "relay_cpu_percent_of_one_core_on": round(on / seconds / 10, 2),
    "preview_added_cpu_percent_of_relay_medians": percent(on - off, off),
    "preview_thread_cpu_percent_of_relay_median": statistics.median(
        [p["preview_thread_cpu_percent_of_relay"] for p in pairs if p["preview_thread_cpu_percent_of_relay"] is not None]
        or [None]
    ),
    "latency_last_pair": latency,
}
json.dump(report, open(f"{out}/report.json", "w"), indent=2)
print(json.dumps(report, indent=2))
EOF
