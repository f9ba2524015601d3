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
# What the benchmark scripts share: process bookkeeping (everything started is stopped on exit), ports, waiting for
# a quiet machine, and nginx-rtmp configured by hand. Sourced; expects `log`, `wait_for_builds` and `rtmp_module`.
# shellcheck shell=bash

# CPU time (user + system, in clock ticks) of one process, without its children. The command name in field 2 may
# hold spaces, so fields are counted after its closing parenthesis.
cpu_ticks() {
    stat_ticks "/proc/$1/stat"
}

# The same from a stat file: /proc/PID/stat, or /proc/PID/task/TID/stat for one thread.
stat_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$1"
}

# A self-signed P-256 certificate for localhost, valid for a day, as $work/tls.crt and $work/tls.key (once per run).
make_certificate() {
    [[ -f $work/tls.crt ]] && return
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
        -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
}

# The benchmark input: 1280x720 30 fps, ~2.9 Mbit/s H.264 with a keyframe every 2 s, AAC 128k, SECONDS long, as FLV.
make_input() {
    local path=$1 seconds=$2
    ffmpeg -hide_banner -loglevel error -y \
        -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
        -t "$seconds" -pix_fmt yuv420p \
        -c:v libx264 -preset veryfast -b:v 2800k -maxrate 3000k -bufsize 3000k -g 60 -keyint_min 60 -sc_threshold 0 \
        -c:a aac -b:a 128k -f flv "$path"
}

# Everything this script starts, stopped on exit whatever happens.
work=$(mktemp -d /tmp/liverelay-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local kept=()
    for other in "${pids[@]}"; do
        [[ $other == "$pid" ]] || kept+=("$other")
    done
    pids=("${kept[@]+"${kept[@]}"}")
}

wait_for_port() {
    local port=$1
    for _ in $(seq 100); do
        if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "benchmark: nothing listens on port $port" >&2
    return 1
}

# Waits until local mode (HTTP on 127.0.0.1:PORT) reports every stream's relay as ready (yes) or not (no).
wait_relay() {
    local http_port=$1 want=$2
    for _ in $(seq 600); do
        if curl -fsS "http://127.0.0.1:$http_port/api/v1/routes" |
            python3 -c "import json,sys; r=json.load(sys.stdin); sys.exit(0 if all(x['relayReady'] == ('$want' == 'yes') for x in r) else 1)"; then
            return 0
        fi
        sleep 0.1
    done
    echo "benchmark: the relay never became ready=$want" >&2
    return 1
}

# A free TCP port on 127.0.0.1 (free now; the servers bind it a moment later).
free_port() {
    # Below the ephemeral range: a port there that nothing listens on may still be the local end of a connection
    # (50 streams open 100 of them), and listening on it then fails with EADDRINUSE.
    local port low=32768
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    (( low > 11024 )) || low=32768
    while true; do
        port=$((10000 + RANDOM % (low - 10000)))
        if ! (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# Others may compile or run tests on this machine: wait (up to --wait-for-builds seconds) until no Swift compiler
# and no test bundle runs, and say whether one still did.
busy_note() {
    local found=()
    pgrep -x swift-frontend >/dev/null && found+=("swift-frontend")
    pgrep -x swift-build >/dev/null && found+=("swift-build")
    pgrep -f '[.]xctest' >/dev/null && found+=("xctest")
    echo "${found[*]}"
}
quiet_note() {
    local waited=0 busy
    busy=$(busy_note)
    while [[ -n $busy ]]; do
        if ((waited >= ${wait_for_builds:?})); then
            echo "busy: $busy"
            return
        fi
        sleep 5
        waited=$((waited + 5))
        busy=$(busy_note)
    done
    echo "quiet"
}

# nginx-rtmp with one worker (worker_processes 1), no recording; the server block comes on standard input.
nginx_conf() {
    local prefix=$1 port=$2
    shift 2
    mkdir -p "$prefix/logs" "$prefix/tmp"
    {
        echo "load_module ${rtmp_module:?};"
        echo "worker_processes 1;"
        echo "pid $prefix/logs/nginx.pid;"
        echo "error_log $prefix/logs/error.log warn;"
        echo "events { worker_connections 4096; }"
        echo "rtmp {"
        echo "    server {"
        echo "        listen 127.0.0.1:$port;"
        cat
        echo "    }"
        echo "}"
        echo "http {"
        echo "    access_log off;"
        for temp in client_body proxy fastcgi uwsgi scgi; do
            echo "    ${temp}_temp_path $prefix/tmp/$temp;"
        done
        echo "}"
    } >"$prefix/nginx.conf"
}

start_nginx() {
    local prefix=$1
    nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" -g 'daemon off; master_process on;' &
    started=$!
    pids+=("$started")
}

# Builds liverelay and liverelay-bench in release unless $1 is true, with the `swift build` arguments that follow
# (a --scratch-path), and prints the directory that holds them. Uses the caller's `log`.
release_bin() {
    local skip=$1
    shift
    if ! $skip; then
        log "building release (liverelay, liverelay-bench)"
        swift build -c release "$@" --product liverelay >&2
        swift build -c release "$@" --product liverelay-bench >&2
    fi
    swift build -c release "$@" --show-bin-path
}

# A relay's files as a pod mounts them, in DIR: secrets/ingest/streamKey (a fresh random key, printed), secrets/
# target/key (TARGET_KEY), and livestream.yaml with one stream NAME pushing to rtmp://127.0.0.1:SINK_PORT/live,
# preview PREVIEW (true|false), written as FORMAT: json (as the operator writes a relay's ConfigMap; the relay reads
# it without the YAML parser) or yaml (as a user writes one by hand).
#   key=$(write_relay_files DIR NAME SINK_PORT TARGET_KEY PREVIEW FORMAT)
write_relay_files() {
    local dir=$1 name=$2 sink_port=$3 target_key=$4 preview=$5 format=$6 key
    key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    mkdir -p "$dir/secrets/ingest" "$dir/secrets/target"
    printf '%s' "$key" >"$dir/secrets/ingest/streamKey"
    printf '%s' "$target_key" >"$dir/secrets/target/key"
    if [[ $format == json ]]; then
        cat >"$dir/livestream.yaml" <<JSON
{
  "apiVersion": "liverelay.io/v1alpha1",
  "kind": "LiveStream",
  "metadata": { "name": "$name" },
  "spec": {
    "ingest": { "app": "live", "streamKeySecretRef": { "name": "ingest", "key": "streamKey" } },
    "targets": [
      {
        "name": "sink",
        "url": "rtmp://127.0.0.1:$sink_port/live",
        "streamKeySecretRef": { "name": "target", "key": "key" }
      }
    ],
    "preview": { "enabled": $preview }
  }
}
JSON
    else
        cat >"$dir/livestream.yaml" <<YAML
apiVersion: liverelay.io/v1alpha1
kind: LiveStream
metadata:
  name: $name
spec:
  ingest:
    app: live
    streamKeySecretRef: { name: ingest, key: streamKey }
  targets:
    - name: sink
      url: rtmp://127.0.0.1:$sink_port/live
      streamKeySecretRef: { name: target, key: key }
  preview: { enabled: $preview }
YAML
    fi
    printf '%s' "$key"
}
