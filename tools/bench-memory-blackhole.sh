#!/usr/bin/env bash
# Memory of `liverelay relay` over a long run with one target black-holed (its nginx frozen with SIGSTOP: it
# accepts nothing and reads nothing) and one healthy target. The relay must keep dropping the frozen target's
# video, disconnect and retry it, and keep memory flat. Prints a CSV of samples and a summary.
#
#   tools/bench-memory-blackhole.sh [SECONDS] [RELAY_BINARY] [INPUT_FLV]
#
# SECONDS defaults to 3600. The binary defaults to .build/release/liverelay. Without INPUT_FLV a 60 s 720p30
# ~3 Mbit/s H.264/AAC file is made with ffmpeg. Everything runs on 127.0.0.1 and is stopped at the end.
# SAMPLE_SECONDS (default 30) sets the sampling interval; PREVIEW=off turns the stream's preview off.
set -euo pipefail

duration=${1:-3600}
relay_binary=${2:-.build/release/liverelay}
input=${3:-}
input_given=$input
interval=${SAMPLE_SECONDS:-30}
# PREVIEW=off runs the relay from a LiveStream file with the stream's preview off (libavformat never loaded).
preview=${PREVIEW:-on}
[[ $preview == on || $preview == off ]] || { echo "error: PREVIEW is on or off" >&2; exit 2; }

for tool in nginx ffmpeg curl; do
    command -v "$tool" >/dev/null || { echo "error: $tool is needed" >&2; exit 1; }
done
[[ -x $relay_binary ]] || { echo "error: no relay binary at $relay_binary (swift build -c release)" >&2; exit 1; }

work=$(mktemp -d /tmp/liverelay-memory.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    if [[ -n ${hole_pid:-} ]]; then kill -CONT -- "-$hole_pid" 2>/dev/null || true; fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for prefix in "$work/steady" "$work/hole"; do
        if [[ -f $prefix/nginx.pid ]]; then kill "$(cat "$prefix/nginx.pid")" 2>/dev/null || true; fi
    done
    wait 2>/dev/null || true
    # The samples, smaps and the relay's log stay for a look; the input this script made does not.
    if [[ -z $input_given ]]; then rm -f "$work/input.flv"; fi
    echo "samples, smaps and the relay's log: $work" >&2
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [[ -z $input ]]; then
    input=$work/input.flv
    ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440 \
        -t 60 -c:v libx264 -preset veryfast -b:v 2800k -maxrate 3000k -bufsize 3000k -g 60 -keyint_min 60 \
        -sc_threshold 0 -c:a aac -b:a 128k -f flv "$input"
fi

start_nginx() { # prefix port
    mkdir -p "$1/logs"
    cat >"$1/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 256; }
rtmp { server { listen 127.0.0.1:$2; application live { live on; } } }
CONF
    nginx -p "$1" -c "$1/nginx.conf"
}

steady_port=$(port); hole_port=$(port); relay_port=$(port); http_port=$(port)
start_nginx "$work/steady" "$steady_port"
start_nginx "$work/hole" "$hole_port"
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/ingest"
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/steady.key"
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/hole.key"

if [[ $preview == on ]]; then
    "$relay_binary" relay --listen "127.0.0.1:$relay_port" --http-listen "127.0.0.1:$http_port" \
        --stream-key-file "$work/ingest" \
        --target "steady=rtmp://127.0.0.1:$steady_port/live" --target-key-file "steady=$work/steady.key" \
        --target "hole=rtmp://127.0.0.1:$hole_port/live" --target-key-file "hole=$work/hole.key" \
        --log-level warning 2>"$work/relay.log" &
else
    # The preview is set in a LiveStream file; the ingest key as a mounted Secret, the targets' keys in their URLs.
    mkdir -p "$work/secrets/keys"
    cp "$work/ingest" "$work/secrets/keys/ingest"
    cat >"$work/relay.yaml" <<YAML
apiVersion: liverelay.io/v1alpha1
kind: LiveStream
metadata: { name: default }
spec:
  ingest: { app: live, streamKeySecretRef: { name: keys, key: ingest } }
  preview: { enabled: false }
  targets:
    - { name: steady, url: "rtmp://127.0.0.1:$steady_port/live/$(cat "$work/steady.key")" }
    - { name: hole, url: "rtmp://127.0.0.1:$hole_port/live/$(cat "$work/hole.key")" }
YAML
    "$relay_binary" relay --listen "127.0.0.1:$relay_port" --http-listen "127.0.0.1:$http_port" \
        --config "$work/relay.yaml" --secrets-dir "$work/secrets" --log-level warning 2>"$work/relay.log" &
fi
relay_pid=$!
pids+=("$relay_pid")
until curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null; do sleep 0.2; done

ffmpeg -hide_banner -loglevel error -stream_loop -1 -re -i "$input" -t "$duration" -c copy -f flv \
    "rtmp://127.0.0.1:$relay_port/live/$(cat "$work/ingest")" &
pids+=("$!")

# Freeze the hole once it is live.
until curl -fs "http://127.0.0.1:$http_port/api/v1/stream" | grep -q '"pushing"'; do sleep 0.5; done
sleep 5
hole_pid=$(cat "$work/hole/nginx.pid")
kill -STOP -- "-$hole_pid" 2>/dev/null || kill -STOP "$hole_pid"
echo "hole frozen; sampling every ${interval}s for ${duration}s" >&2

begin=$(date +%s)
{
echo "seconds,rss_kib,anon_kib,file_kib,steady_state,hole_state,hole_dropped,steady_bytes_sent"
while (( $(date +%s) - begin < duration )); do
    sleep "$interval"
    # VmRSS is RssAnon (the heap, stacks) plus RssFile (the binary's and libraries' pages): which one moves says
    # whether memory grows or code pages are faulting back in.
    read -r rss anon file < <(awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {print r, a, f}' \
        "/proc/$relay_pid/status")
    if (( $(date +%s) - begin >= 120 )) && [[ ! -f $work/smaps-2min.txt ]]; then
        cp "/proc/$relay_pid/smaps" "$work/smaps-2min.txt"
    fi
    json=$(curl -fs "http://127.0.0.1:$http_port/api/v1/stream" || echo '{}')
    # The end's smaps is the last one taken while the stream is live (the last sample may come after it ended).
    if grep -q '"pushing"' <<<"$json"; then
        cp "/proc/$relay_pid/smaps" "$work/smaps-end.txt" 2>/dev/null || true
    fi
    python3 - "$json" "$(( $(date +%s) - begin ))" "$rss" "$anon" "$file" <<'PY'
import json, sys
status = json.loads(sys.argv[1] or "{}")
targets = {t["name"]: t for t in status.get("targets", [])}
steady, hole = targets.get("steady", {}), targets.get("hole", {})
print(f'{sys.argv[2]},{sys.argv[3]},{sys.argv[4]},{sys.argv[5]},{steady.get("state")},{hole.get("state")},'
      f'{hole.get("droppedMessages")},{steady.get("bytesSent")}')
PY
done
} | tee "$work/samples.csv"

python3 - "$work/samples.csv" <<'PY'
import csv, sys
# The last sample may come after the publisher stopped; only samples with the relay live count.
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["steady_state"] == "pushing"]
for column in ("rss_kib", "anon_kib", "file_kib"):
    values = [int(r[column]) for r in rows]
    warm = [int(r[column]) for r in rows if int(r["seconds"]) >= 120] or values
    name = column.removesuffix("_kib")
    print(f"{name}: samples={len(rows)} first={values[0]}KiB after_2min={warm[0]}KiB max={max(values)}KiB "
          f"last={values[-1]}KiB growth_after_2min={warm[-1]-warm[0]}KiB")
# Two samples say little: the minute's heap trim takes RssAnon down by megabytes, so a sample just after one is low.
# Lowest, median and highest of each quarter of the run say whether the level moves.
end = max(int(r["seconds"]) for r in rows)
for quarter in range(4):
    window = sorted(int(r["anon_kib"]) for r in rows if quarter * end / 4 < int(r["seconds"]) <= (quarter + 1) * end / 4)
    if window:
        print(f"anon, quarter {quarter + 1}: lowest={window[0]}KiB median={window[len(window) // 2]}KiB "
              f"highest={window[-1]}KiB")
PY
# What grew between 2 minutes and the last live sample, mapping by mapping (Rss in KiB); runs of 2 minutes or more.
[[ -f $work/smaps-2min.txt ]] || exit 0
python3 - "$work/smaps-2min.txt" "$work/smaps-end.txt" <<'PY'
import re, sys
def mappings(path):
    result, name = {}, None
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return result
    for line in lines:
        header = re.match(r"^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$", line)
        if header:
            name = f"{header.group(2) or '[anon]'} {header.group(1)}"
        elif line.startswith("Rss:") and name:
            result[name] = result.get(name, 0) + int(line.split()[1])
    return result
before, after = mappings(sys.argv[1]), mappings(sys.argv[2])
changes = sorted(((after.get(k, 0) - before.get(k, 0), k) for k in set(before) | set(after)), reverse=True)
for delta, name in [c for c in changes if c[0] != 0][:12]:
    print(f"smaps 2 min -> last live sample: {delta:+d} KiB  {name}")
PY
