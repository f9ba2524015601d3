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
# WHIP against RTMP into liverelay, in one run on this machine: glass-to-glass latency, and the CPU and memory of
# the gateway and the relays per stream.
#
# Every publisher reads the same raw 1280x720 30 fps video from Benchmarks/whip/glass.py, which burns the wall clock
# at the moment it hands a frame over (and the frame's number) into the frame's top lines, and encodes it itself with
# x264 (veryfast, zerolatency, 2.5 Mbit/s CBR, a keyframe every 2 s). For each stream count, three paths one after the
# other, each into the same nginx-rtmp sink:
#
#   direct  ffmpeg (libx264, AAC) -> RTMP -> sink                                      (the floor: encode, decode)
#   rtmp    ffmpeg (libx264, AAC) -> RTMP -> liverelay local (gateway -> relay) -> sink
#   whip    whip-client (GStreamer webrtcbin: x264enc, opusenc) -> WHIP (ICE, DTLS-SRTP over UDP) -> liverelay local
#           (the gateway's WebRTC ingest: jitter buffer, H.264 depacketizer, Opus decoded and encoded to AAC, RTMP
#           publish) -> relay -> sink
#
# At the sink, `glass.py sink` plays each stream with ffmpeg and reads the burned-in time back from every decoded
# frame: latency = arrival - capture on one clock. The first --warmup seconds are left out. CPU: /proc/PID/stat
# (utime + stime) of the local-mode process (the gateway) and of its relay children over the same --seconds window,
# per stream-minute; resident memory at the end of the window. Local mode runs the streams of both paths, relays kept
# running (minReplicas 1), so this measures ingest, not starts. Results: OUT/report.md, one JSON per sink stream.
#
# Defaults: one stream per path, 5 s of warm-up and 20 s measured. Several whip-clients at once work since the preload
# keeps libnice's UPnP (and with it libsoup 3) from running (tools/whip-client-soup-shim.c says why they crashed).
#
# Usage: tools/bench-whip.sh [--out DIR] [--seconds N] [--warmup N] [--streams "1 5"] [--paths "direct rtmp whip"]
#                            [--size 1280x720] [--bitrate KBITS] [--skip-build] [--scratch-path DIR]
#                            [--relay-bin PATH] [--wait-for-builds SECONDS]
#   --size, --bitrate: the video (default 1280x720, 2500 kbit/s; at least 640 wide, for the stamp)
# Needs: swift (unless --relay-bin), ffmpeg, nginx with libnginx-mod-rtmp, python3, curl, cc, whip-client with
# GStreamer's webrtcbin, x264enc, opusenc and rawvideoparse, a non-loopback IPv4 address (whip-client's libnice pairs
# no loopback candidate), Linux /proc. Leaves nothing running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

out="$root/.build/bench-whip"
seconds=20
warmup=5
stream_counts="1"
size=1280x720
bitrate=2500
paths="direct rtmp whip"
skip_build=false
relay_bin=""
wait_for_builds=0
scratch=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --streams) stream_counts=$2; shift 2 ;;
        --paths) paths=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --bitrate) bitrate=$2; shift 2 ;;
        --skip-build) skip_build=true; shift ;;
        --scratch-path) scratch=(--scratch-path "$2"); shift 2 ;;
        --relay-bin) relay_bin=$2; shift 2 ;;
        --wait-for-builds) wait_for_builds=$2; shift 2 ;;
        -h | --help) sed -n '/^# WHIP against RTMP/,/^# no loopback/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ $size =~ ^([0-9]+)x([0-9]+)$ ]] || { echo "bench-whip: --size is WIDTHxHEIGHT" >&2; exit 2; }
width=${BASH_REMATCH[1]}
height=${BASH_REMATCH[2]}

fail() {
    echo "bench-whip: $*" >&2
    exit 1
}

rtmp_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
for tool in ffmpeg nginx python3 curl cc whip-client gst-inspect-1.0; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (tools/test.sh --install-only installs the peers)"
done
[[ -f $rtmp_module ]] || fail "$rtmp_module is missing (apt-get install libnginx-mod-rtmp)"
for element in webrtcbin x264enc opusenc rawvideoparse fdsrc rtph264pay rtpopuspay audiotestsrc; do
    gst-inspect-1.0 "$element" >/dev/null 2>&1 || fail "GStreamer element $element is missing"
done
# whip-client's libnice gathers no loopback candidate when the host has another address: WebRTC ingest listens on
# the first non-loopback IPv4 address (the stream ports and HTTP stay on 127.0.0.1).
webrtc_host=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' | grep -v '^127\.' | head -1 || true)
[[ -n $webrtc_host ]] || fail "no non-loopback IPv4 address: whip-client's ICE agent would find no pair"

log() { printf '%s bench-whip: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# shellcheck source=tools/bench-common.sh
source "$root/tools/bench-common.sh"

if [[ -n $relay_bin ]]; then
    relay=$relay_bin
else
    command -v swift >/dev/null || fail "swift is not installed (or give --relay-bin)"
    if ! $skip_build; then
        log "building release (liverelay)"
        swift build -c release ${scratch[@]+"${scratch[@]}"} --product liverelay >&2
    fi
    relay="$(swift build -c release ${scratch[@]+"${scratch[@]}"} --show-bin-path)/liverelay"
fi
[[ -x $relay ]] || fail "$relay is not built"
glass="$root/Benchmarks/whip/glass.py"

# --- the video every publisher encodes: two seconds of testsrc2, raw, looped by glass.py source (one file, mapped
# by every source, so N sources cost no N copies)
log "making the background with ffmpeg"
background="$work/background.yuv"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=${size}:rate=30" -frames:v 60 -pix_fmt yuv420p \
    -f rawvideo "$background"

# Debian's whip-client links libsoup 2 and webrtcbin pulls libsoup 3, which aborts at load when it sees libsoup 2;
# this preload hides the one probe and keeps libsoup 3 from running (tools/whip-client-soup-shim.c, which the tests
# use too).
cc -shared -fPIC -o "$work/shim.so" "$root/tools/whip-client-soup-shim.c" -ldl
# GStreamer's plugin registry, written once here: whip-clients starting together with no registry each write it, and
# crash on one another's half-written file.
export GST_REGISTRY="$work/gst-registry.bin"
env LD_PRELOAD="$work/shim.so" HOME="$work" gst-inspect-1.0 webrtcbin >/dev/null

sink_port=$(free_port)
printf '        application sink { live on; }\n' | nginx_conf "$work/sink" "$sink_port"
start_nginx "$work/sink"
sink_pid=$started
wait_for_port "$sink_port"
sink="rtmp://127.0.0.1:$sink_port/sink"

mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.jsonl "$out"/report.md
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "liverelay: $(git describe --always --dirty 2>/dev/null || echo unknown)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "uptime at start: $(uptime)"
    echo "ffmpeg: $(ffmpeg -hide_banner -version | head -1)"
    echo "gstreamer: $(gst-inspect-1.0 --version | sed -n 2p)"
    echo "seconds per path: $seconds (after $warmup s of warm-up); streams: $stream_counts; paths: $paths"
    echo "video: $size 30 fps, $bitrate kbit/s"
} >"$out/machine.txt"
cat "$out/machine.txt" >&2

# The encoders, the same x264 settings on both sides: veryfast, zerolatency (no lookahead, no B-frames, sliced
# threads), --bitrate with a 600 ms VBV (CBR), a keyframe every 60 frames.
x264_ffmpeg=(-c:v libx264 -preset veryfast -tune zerolatency -b:v "${bitrate}k" -maxrate "${bitrate}k"
    -bufsize "$((bitrate * 6 / 10))k" -g 60 -keyint_min 60 -sc_threshold 0)
x264_gst="x264enc speed-preset=veryfast tune=zerolatency bitrate=$bitrate vbv-buf-capacity=600 key-int-max=60"
raw_gst="fdsrc fd=0 blocksize=$((width * height * 3 / 2)) ! rawvideoparse width=$width height=$height format=i420"
raw_gst+=" framerate=30/1"
source_args=(--background "$background" --width "$width" --height "$height" --seconds $((warmup + seconds + 60)))

# One publisher of glass.py's video, in the background: $published is the encoder's pid (glass.py ends with it).
# ffmpeg's muxer would hold video back until audio of a later time is there (it interleaves, up to 10 s): with
# -max_interleave_delta 1 each packet goes out when encoded, as the gateway does with WHIP's.
# Its output goes to DIR/publisher-LABEL-I.log (whip-client logs the Bearer line: never shown, deleted with $work).
publish_rtmp() {
    local url=$1 log_file=$2
    python3 "$glass" source "${source_args[@]}" |
        ffmpeg -hide_banner -nostdin -loglevel warning -f rawvideo -pix_fmt yuv420p -s "$size" -r 30 -i pipe:0 \
            -f lavfi -i sine=frequency=440:sample_rate=48000 -map 0:v -map 1:a "${x264_ffmpeg[@]}" \
            -c:a aac -b:a 128k -max_interleave_delta 1 -f flv -flvflags no_duration_filesize "$url" \
            >"$log_file" 2>&1 &
    published=$!
    pids+=("$published")
}

publish_whip() {
    local url=$1 key=$2 log_file=$3
    mkdir -p "$log_file.home"
    python3 "$glass" source "${source_args[@]}" |
        env LD_PRELOAD="$work/shim.so" HOME="$log_file.home" whip-client -u "$url" -t "$key" -n -o -l 4 \
            -V "$raw_gst ! $x264_gst ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! application/x-rtp,media=video,encoding-name=H264,payload=96" \
            -A "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111" \
            >"$log_file" 2>&1 &
    published=$!
    pids+=("$published")
}

# The publisher's log without the line that shows the key (and without GLib's noise), then local mode's.
publisher_log() {
    grep -v -i -E 'bearer|authorization|GLib-CRITICAL|^$' "$1" | tail -30 >&2 || true
    if [[ -f $dir/local.log ]]; then
        echo "bench-whip: local mode's log:" >&2
        grep -v -i -E 'password|bearer|key' "$dir/local.log" | tail -30 >&2 || true
    fi
}

# The streams of both liverelay paths, for local mode: wI (WHIP) and rI (RTMP), each with its own key and port.
local_yaml() {
    local count=$1 tag=$2
    local first=true
    for kind in w r; do
        for i in $(seq "$count"); do
            $first || echo "---"
            first=false
            cat <<YAML
apiVersion: liverelay.io/v1alpha1
kind: LiveStream
metadata: { name: $kind$i }
spec:
  ingest: { port: $(cat "$dir/ports/$kind$i"), streamKeySecretRef: { name: $kind$i-key, key: k } }
  targets: [ { name: sink, url: "$sink/$kind-$tag-$i" } ]
  preview: { enabled: false }
  scaling: { minReplicas: 1, idleSeconds: 60 }
---
apiVersion: v1
kind: Secret
metadata: { name: $kind$i-key }
stringData: { k: "$(cat "$dir/keys/$kind$i")" }
YAML
        done
    done
}

# CPU ticks of the gateway (local mode's own process) and of its relay children, summed, as "GATEWAY RELAYS".
tree_ticks() {
    local relays=0 child
    for child in $(pgrep -P "$local_pid" || true); do
        relays=$((relays + $(cpu_ticks "$child" 2>/dev/null || echo 0)))
    done
    echo "$(cpu_ticks "$local_pid") $relays"
}

# Resident memory in KiB, gateway and relays summed, as "GATEWAY RELAYS".
tree_rss() {
    local relays=0 child
    for child in $(pgrep -P "$local_pid" || true); do
        relays=$((relays + $(awk '/VmRSS/ {print $2}' "/proc/$child/status" 2>/dev/null || echo 0)))
    done
    echo "$(awk '/VmRSS/ {print $2}' "/proc/$local_pid/status") $relays"
}

# One path with N streams: sink readers first (they wait for the stream), then the publishers; after the warm-up,
# the CPU window; then every publisher stopped, and each reader's frames checked.
run_path() {
    local path=$1 i url key publishers=() readers=() before after rss_line
    log "$path: $n streams, $warmup s warm-up + $seconds s measured ($(uptime | sed 's/.*load average/load average/'))"
    for i in $(seq "$n"); do
        local stream=${path:0:1}-$tag-$i
        python3 "$glass" sink --width "$width" --url "$sink/$stream" --label "$n/$path" --seconds $((warmup + seconds + 30)) \
            --output "$out/$tag-$path-$i.json" &
        readers+=("$!")
        pids+=("$!")
    done
    for i in $(seq "$n"); do
        case $path in
            direct) publish_rtmp "$sink/d-$tag-$i" "$dir/publisher-$path-$i.log" ;;
            rtmp)
                key=$(cat "$dir/keys/r$i")
                publish_rtmp "rtmp://127.0.0.1:$(cat "$dir/ports/r$i")/live/$key" "$dir/publisher-$path-$i.log"
                ;;
            whip)
                publish_whip "http://127.0.0.1:$http_port/whip/default/w$i" "$(cat "$dir/keys/w$i")" \
                    "$dir/publisher-$path-$i.log"
                ;;
        esac
        publishers+=("$published")
    done
    # A fixed warm-up, then a fixed window: what is measured is time itself, not an event to wait for.
    sleep "$warmup"
    [[ $path == direct ]] || before=$(tree_ticks)
    window_start=$(date +%s%3N)
    sleep "$seconds"
    window_end=$(date +%s%3N)
    if [[ $path != direct ]]; then
        after=$(tree_ticks)
        rss_line=$(tree_rss)
    fi
    printf '{"label": "%s/%s", "start_ms": %s, "end_ms": %s}\n' "$n" "$path" "$window_start" "$window_end" \
        >>"$out/windows.jsonl"
    for i in "${!publishers[@]}"; do
        if ! kill -0 "${publishers[$i]}" 2>/dev/null; then
            echo "bench-whip: the $path publisher of stream $((i + 1)) ended before the window did; its log:" >&2
            publisher_log "$dir/publisher-$path-$((i + 1)).log"
            exit 1
        fi
    done
    # whip-client sends DELETE on SIGINT; ffmpeg ends its RTMP publish on SIGTERM.
    for pid in "${publishers[@]}"; do
        if [[ $path == whip ]]; then
            kill -INT "$pid" 2>/dev/null || true
            # Up to 5 s for its DELETE to be answered.
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        stop "$pid"
    done
    for pid in "${readers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${readers[@]}"; do stop "$pid"; done
    for i in $(seq "$n"); do
        [[ -s $out/$tag-$path-$i.json ]] || fail "$path stream $i: the sink reader wrote nothing"
    done
    if [[ $path != direct ]]; then
        python3 - "$before" "$after" "$rss_line" "$n" "$seconds" "$path" "$(getconf CLK_TCK)" >>"$out/cpu.jsonl" <<'PY'
import json, sys
before, after, rss = ([int(x) for x in a.split()] for a in sys.argv[1:4])
n, seconds, path, hz = int(sys.argv[4]), float(sys.argv[5]), sys.argv[6], int(sys.argv[7])
per = lambda ticks: round(ticks / hz / n / (seconds / 60), 3)
print(json.dumps({"path": path, "streams": n, "gateway_cpu_s_per_stream_minute": per(after[0] - before[0]),
                  "relays_cpu_s_per_stream_minute": per(after[1] - before[1]),
                  "gateway_rss_mib": round(rss[0] / 1024, 1), "relays_rss_mib": round(rss[1] / 1024, 1)}))
PY
    fi
}

for n in $stream_counts; do
    tag="n$n"
    dir="$work/$tag"
    mkdir -p "$dir/keys" "$dir/ports"
    for kind in w r; do
        for i in $(seq "$n"); do
            head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$dir/keys/$kind$i"
            free_port >"$dir/ports/$kind$i"
        done
    done
    note=$(quiet_note)
    log "$n streams ($note)"
    echo "streams $n: $note; uptime $(uptime)" >>"$out/machine.txt"

    local_pid=""
    if [[ $paths == *rtmp* || $paths == *whip* ]]; then
        local_yaml "$n" "$tag" >"$dir/streams.yaml"
        http_port=$(free_port)
        "$relay" local -f "$dir/streams.yaml" --listen-host 127.0.0.1 --port-range 20000-59999 \
            --http-listen "127.0.0.1:$http_port" --webrtc-listen-host "$webrtc_host" --webrtc-udp-port 0 \
            --state-dir "$dir/state" --relay-log-level warning --log-level info >"$dir/local.log" 2>&1 &
        local_pid=$!
        pids+=("$local_pid")
        wait_for_port "$http_port"
        wait_relay "$http_port" yes
    fi
    for path in $paths; do
        run_path "$path"
    done
    [[ -z $local_pid ]] || stop "$local_pid"
done
stop "$sink_pid"
echo "uptime at end: $(uptime)" >>"$out/machine.txt"

python3 "$glass" report --windows "$out/windows.jsonl" "$out"/*.json >"$out/latency.jsonl" ||
    fail "a sink received no decodable frame (see $out/latency.jsonl)"
python3 - "$out" <<'PY' >"$out/report.md"
import glob, json, os, sys
out = sys.argv[1]
cpu = {}
for line in open(os.path.join(out, "cpu.jsonl")) if os.path.exists(os.path.join(out, "cpu.jsonl")) else []:
    row = json.loads(line)
    cpu[(row["streams"], row["path"])] = row
print("| Streams | Path | Latency p50 / p95 / max (ms) | Frames received | Gateway CPU s per stream-minute |"
      " Relays CPU s per stream-minute | Gateway RSS (MiB) | Relays RSS (MiB) |")
print("|---:|---|---|---:|---:|---:|---:|---:|")
for line in open(os.path.join(out, "latency.jsonl")):
    row = json.loads(line)
    streams, path = row["label"].split("/")
    c = cpu.get((int(streams), path))
    cells = [c["gateway_cpu_s_per_stream_minute"], c["relays_cpu_s_per_stream_minute"], c["gateway_rss_mib"],
             c["relays_rss_mib"]] if c else ["—"] * 4
    print("| %s | %s | %s / %s / %s | %s %% of %s | %s | %s | %s | %s |" % (
        streams, path, row["p50_ms"], row["p95_ms"], row["max_ms"], row["received_percent"], row["frames"], *cells))
PY
log "results in $out (report.md, machine.txt, latency.jsonl, cpu.jsonl, one JSON per sink stream)"
cat "$out/report.md"
