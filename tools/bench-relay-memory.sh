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
# The resident memory of one `liverelay relay` (the pod case: one stream, one target) against nginx-rtmp's, side by
# side in one run, on the same nginx-rtmp sink:
#
#   liverelay  liverelay relay, one stream, its one target the sink       (its own process)
#   nginx      nginx-rtmp, `application live { live on; push SINK; }`     (master + worker, worker_processes 1)
#
# The stream's preview is off (nginx-rtmp has none), unless --preview: then liverelay also packages the preview with
# libavformat, which it loads (with the libraries libavcodec needs) when the publish starts.
#
# Both are measured idle (started, nobody publishing, after --settle seconds) and with one live stream: ffmpeg
# publishes the same input to each at once (bench-common.sh's, made once per run: 10 s of 1280x720 at 30 fps,
# H.264 at about 2.9 Mbit/s with a keyframe every 2 s, AAC; looped and copied in real time with -re), and each pushes
# it to the sink. Memory is VmRSS from
# /proc/PID/status, sampled every second over the last half of --seconds of publishing (the largest sample is
# reported), nginx's master and worker summed; threads are /proc/PID/task. For liverelay it also writes where its
# resident memory is, per mapping (/proc/PID/smaps summed by path) and in total (/proc/PID/smaps_rollup), idle and
# live. Before it measures, the run checks that both relays push to the sink.
#
# The binary is built as the relay image's (tools/build-images.sh): release, the Swift runtime linked statically,
# lld with packed relative relocations, no exported symbols, stripped. With --image the liverelay path runs inside
# the relay image instead (Dockerfile.relay built with buildah as tools/test-images.sh does; needs root, buildah and
# debootstrap), as user 65532 with the host's network.
#
# Usage: tools/bench-relay-memory.sh [--binary PATH] [--image] [--preview] [--seconds N] [--settle N] [--out DIR]
#                                    [--wait-for-builds SECONDS] [--relay-args "ARGS"] [--config-format F]
#   --binary PATH   measure this liverelay instead of building one (any build: dynamic, debug, another branch's)
#   --image         run liverelay inside the relay image (root)
#   --preview       the stream's preview on
#   --seconds N     seconds of publishing (default 30)
#   --settle N      seconds each relay idles before the idle sample (default 5)
#   --out DIR       where report.md and the smaps breakdowns go (default .build/bench-relay-memory)
#   --relay-args    extra arguments for `liverelay relay` (split on spaces)
#   --config-format the LiveStream file as json (default: as the operator writes a relay's ConfigMap) or yaml
# Needs: swift (unless --binary), ffmpeg, nginx with libnginx-mod-rtmp, curl, Linux /proc. Leaves nothing running.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

binary=""
image=false
preview=false
seconds=30
settle=5
out="$root/.build/bench-relay-memory"
wait_for_builds=300
relay_args=()
config_format=json
while [[ $# -gt 0 ]]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --image) image=true; shift ;;
        --preview) preview=true; shift ;;
        --seconds) seconds=$2; shift 2 ;;
        --settle) settle=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --wait-for-builds) wait_for_builds=$2; shift 2 ;;
        --relay-args) read -r -a relay_args <<<"$2"; shift 2 ;;
        --config-format) config_format=$2; shift 2 ;;
        -h | --help) sed -n '/^# The resident memory/,/^# Needs:/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ -n $binary && $binary != /* ]] && binary="$PWD/$binary"
[[ $out == /* ]] || out="$root/$out"
if [[ $config_format != json && $config_format != yaml ]]; then
    echo "bench-relay-memory: --config-format is json or yaml" >&2
    exit 2
fi
if ((seconds < 4)); then
    echo "bench-relay-memory: --seconds must be at least 4" >&2
    exit 2
fi

# shellcheck source=tools/images-common.sh
source "$root/tools/images-common.sh"
# shellcheck source=tools/bench-common.sh
source "$root/tools/bench-common.sh"
log() { echo "bench-relay-memory: $*" >&2; }
rtmp_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
[[ -f $rtmp_module ]] || { log "needs nginx's RTMP module (Debian package libnginx-mod-rtmp)"; exit 1; }
for tool in ffmpeg ffprobe nginx curl; do
    command -v "$tool" >/dev/null || { log "needs $tool"; exit 1; }
done
# bench-common.sh stops what it started on exit; the image's buildah storage goes too.
relay_group=""
stop_relay_group() {
    [[ -n $relay_group ]] || return 0
    kill -TERM -- "-$relay_group" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 -- "-$relay_group" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$relay_group" 2>/dev/null || true
    wait "$relay_group" 2>/dev/null || true
    relay_group=""
}
bench_work=$work
finish() {
    stop_relay_group
    work=$bench_work
    cleanup
    if $image; then
        images_cleanup false
    fi
}
trap finish EXIT

# 1. The binary, as the image has it.
if [[ -z $binary ]]; then
    log "building: $(release_build_command --show-bin-path | tr '\n' ' ')"
    release_build >&2
    binary="$(release_build --show-bin-path)/liverelay"
fi
[[ -x $binary ]] || { log "no liverelay at $binary"; exit 1; }
mkdir -p "$out"

# 2. The sink, and the nginx-rtmp relay pushing to it.
sink_port=$(free_port)
nginx_conf "$work/sink" "$sink_port" <<EOF
        application live { live on; }
EOF
start_nginx "$work/sink"
wait_for_port "$sink_port"
nginx_port=$(free_port)
nginx_conf "$work/nginx" "$nginx_port" <<EOF
        application live { live on; push rtmp://127.0.0.1:$sink_port/live/nginx-out; }
EOF
start_nginx "$work/nginx"
nginx_master=$started
wait_for_port "$nginx_port"

# How much of a binary one page fault maps depends on the page cache's folios for the file, which the last reads of
# it made (a copy, a build, another benchmark): the same binary measured 2 MiB apart in runs 40 minutes apart. Each
# run therefore starts with the binary out of the page cache (its clean pages; POSIX_FADV_DONTNEED, through dd, needs
# no privilege), so that the relay reads it from the disk as on a node where it was not running.
evict_from_page_cache() {
    dd if="$1" iflag=nocache count=0 status=none 2>/dev/null || log "could not drop $1 from the page cache"
}

# 3. liverelay: one stream, one target (the sink), keys in files as a pod mounts them.
key=$(write_relay_files "$work/relay" memory "$sink_port" liverelay-out "$preview" "$config_format")
chmod -R a+rX "$work/relay"
relay_port=$(free_port)
http_port=$(free_port)
relay_command=(relay --config RELAY_DIR/livestream.yaml --secrets-dir RELAY_DIR/secrets --log-level warning
    --listen "127.0.0.1:$relay_port" --http-listen "127.0.0.1:$http_port" ${relay_args[@]+"${relay_args[@]}"})
if $image; then
    # images-common.sh's `work` is .build-images/ (its cache), bench-common.sh's this run's temporary directory.
    images_setup bench-relay-memory
    make_context "$binary" true
    make_base
    build_image Dockerfile.relay "$(relay_repository):bench"
    work=$bench_work
    container=$(bah from --pull-never "$(relay_repository):bench")
    bah copy --chown 65532:65532 "$container" "$work/relay" /tmp/relay >/dev/null
    # The image's files were written seconds ago: the page cache holds them as written (dirty, and in the folios
    # the writes made), where a node extracted its image long before a pod starts. Written back and out of the
    # cache, the binary is read as it would be there.
    sync
    mount=$(bah mount "$container")
    for file in "$mount/usr/local/bin/liverelay" "$mount"/usr/lib/x86_64-linux-gnu/*.so* "$mount"/usr/lib64/*.so*; do
        [[ -f $file && ! -L $file ]] && evict_from_page_cache "$file"
    done
    bah umount "$container" >/dev/null
    setsid buildah "${storage[@]}" run --isolation chroot --network host --user 65532:65532 "$container" -- \
        /usr/local/bin/liverelay "${relay_command[@]//RELAY_DIR//tmp/relay}" >"$work/relay.log" 2>&1 &
    relay_group=$!
    where="inside the relay image (buildah run --isolation chroot, user 65532)"
else
    evict_from_page_cache "$binary"
    setsid "$binary" "${relay_command[@]//RELAY_DIR/$work/relay}" >"$work/relay.log" 2>&1 &
    relay_group=$!
    where="outside any image"
fi
for _ in $(seq 300); do
    curl -fsS "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1 && break
    kill -0 "$relay_group" 2>/dev/null || { cat "$work/relay.log" >&2; log "the relay exited"; exit 1; }
    sleep 0.1
done
relay_pid=$(pgrep -s "$relay_group" -x liverelay) || { log "no liverelay process in the relay's session"; exit 1; }
nginx_worker=$(pgrep -P "$nginx_master" | head -1)

# Resident KiB of liverelay (one process) or nginx (master + worker).
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
rss_of() {
    case $1 in
        liverelay) rss "$relay_pid" ;;
        nginx) echo $(($(rss "$nginx_master") + $(rss "$nginx_worker"))) ;;
    esac
}
threads_of() {
    case $1 in
        liverelay) find "/proc/$relay_pid/task" -mindepth 1 -maxdepth 1 | wc -l ;;
        nginx) echo $(($(find "/proc/$nginx_master/task" -mindepth 1 -maxdepth 1 | wc -l) + $(find "/proc/$nginx_worker/task" -mindepth 1 -maxdepth 1 | wc -l))) ;;
    esac
}
# liverelay's resident memory per mapping: Rss and Private_Dirty summed by path, largest first; then the rollup.
breakdown() {
    local file=$1
    {
        printf '%10s %10s  %s\n' "Rss KiB" "Dirty KiB" "mapping"
        awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anonymous]" : $6) }
            /^Rss:/ { rss[name] += $2 }
            /^Private_Dirty:/ { dirty[name] += $2 }
            END { for (n in rss) if (rss[n] > 0) printf "%10d %10d  %s\n", rss[n], dirty[n], n }' \
            "/proc/$relay_pid/smaps" | sort -rn
        echo
        grep -E '^(Rss|Pss|Private_Clean|Private_Dirty|Shared_Clean|Anonymous):' "/proc/$relay_pid/smaps_rollup"
        echo
        echo "threads: $(cat /proc/"$relay_pid"/task/*/comm | sort | uniq -c | awk '{ printf "%s%s x%d", sep, $2, $1; sep = ", " }')"
    } >"$file"
    # Which pages of the binary are resident, as offsets in the file (one per line, from /proc/PID/pagemap's
    # present bit): two runs compared page by page, and with `nm` of an unstripped build of the same code, say
    # which code the difference is.
    python3 - "$relay_pid" >"${file%.txt}-binary-pages.txt" <<'PY' || true
import os, struct, sys
pid = sys.argv[1]
exe = os.path.realpath(f"/proc/{pid}/exe").split("/")[-1]
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
    for line in maps:
        fields = line.split()
        if len(fields) < 6 or not fields[5].endswith("/" + exe):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        offset = int(fields[2], 16)
        pagemap.seek(start // 4096 * 8)
        entries = pagemap.read((end - start) // 4096 * 8)
        for index in range(len(entries) // 8):
            if struct.unpack_from("<Q", entries, index * 8)[0] >> 63:
                print(f"{fields[1]} {offset + index * 4096:#x}")
PY
}

note=$(quiet_note)
sleep "$settle"
idle_liverelay=$(rss_of liverelay)
idle_nginx=$(rss_of nginx)
idle_threads_liverelay=$(threads_of liverelay)
idle_threads_nginx=$(threads_of nginx)
breakdown "$out/liverelay-idle-smaps.txt"
log "idle: liverelay $idle_liverelay KiB, nginx-rtmp $idle_nginx KiB"

# 4. One live stream each, the same input.
make_input "$work/input.flv" 10
publish() {
    ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$work/input.flv" -t "$seconds" -c copy -f flv "$1" \
        >>"$work/ffmpeg.log" 2>&1 &
    pids+=("$!")
}
publish "rtmp://127.0.0.1:$relay_port/live/$key"
publish "rtmp://127.0.0.1:$nginx_port/live/in"
# Both push: the sink plays what each relay sends it (a player at the sink, not at the relays).
sleep 2
for stream in liverelay-out nginx-out; do
    codecs=$(timeout 15 ffprobe -v error -show_entries stream=codec_name -of csv=p=0 \
        "rtmp://127.0.0.1:$sink_port/live/$stream" 2>>"$work/ffmpeg.log" | sort | tr '\n' ' ') || true
    if [[ $codecs != "aac h264 " ]]; then
        cat "$work/relay.log" "$work/ffmpeg.log" >&2
        log "the sink does not play $stream (codecs: '$codecs')"
        exit 1
    fi
done
peak_liverelay=0
peak_nginx=0
for second in $(seq 3 $((seconds - 1))); do
    sleep 1
    if ((second >= seconds / 2)); then
        now=$(rss_of liverelay)
        ((now > peak_liverelay)) && peak_liverelay=$now
        now=$(rss_of nginx)
        ((now > peak_nginx)) && peak_nginx=$now
    fi
done
live_threads_liverelay=$(threads_of liverelay)
live_threads_nginx=$(threads_of nginx)
breakdown "$out/liverelay-live-smaps.txt"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
{
    echo "## Relay memory, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "liverelay: \`$binary\`, $where; preview $($preview && echo on || echo off); machine: $note;" \
        "$seconds s of publishing."
    echo
    echo "| | liverelay | nginx-rtmp | liverelay / nginx-rtmp |"
    echo "|---|---|---|---|"
    echo "| idle, resident | $(mib "$idle_liverelay") MiB | $(mib "$idle_nginx") MiB | $(ratio "$idle_liverelay" "$idle_nginx") |"
    echo "| one stream to one target, resident (peak) | $(mib "$peak_liverelay") MiB | $(mib "$peak_nginx") MiB | $(ratio "$peak_liverelay" "$peak_nginx") |"
    echo "| threads idle / live | $idle_threads_liverelay / $live_threads_liverelay | $idle_threads_nginx / $live_threads_nginx | |"
    echo
    echo "liverelay per mapping, idle ($out/liverelay-idle-smaps.txt):"
    echo
    echo '```'
    head -14 "$out/liverelay-idle-smaps.txt"
    echo '```'
    echo
    echo "liverelay per mapping, live ($out/liverelay-live-smaps.txt):"
    echo
    echo '```'
    head -14 "$out/liverelay-live-smaps.txt"
    echo '```'
} | tee "$out/report.md"
