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
# Builds the runtime stage of Dockerfile.relay and Dockerfile.operator with buildah as tools/build-images.sh does
# (no Docker engine, no image pulled, a debootstrapped bookworm base cached in .build-images/), from the binary built
# on this host (swift build, or $LIVERELAY_BINARY, whose Swift runtime libraries are copied if it links them), and
# runs what is inside. In each image: `liverelay --help` and its subcommands' --help, no shell, user 65532. Then the
# relay image streams for real: a host nginx-rtmp records on 127.0.0.1, the relay runs in its image as 65532 (the
# network is the host's) with a LiveStream whose target is that nginx, and ffmpeg publishes a 5 s test pattern to
# it. The relay must answer /healthz and /readyz, package the preview (libavformat loaded from the image), and
# forward a recording that ffprobe decodes as about 5 s of video; its log must have no line at warning level or
# above and none with "error", "Permission denied" or "Cannot set". Ports are ephemeral on 127.0.0.1; buildah's
# storage is private to .build-images/test-images/ and removed at the end; nothing is left running or mounted.
# Needs root and the Debian packages buildah, debootstrap, curl, python3, ffmpeg, nginx and libnginx-mod-rtmp.
#
# Usage: tools/test-images.sh [--keep-storage]
set -euo pipefail

script_dir=${BASH_SOURCE[0]%/*}
[[ $script_dir == "${BASH_SOURCE[0]}" ]] && script_dir=.
# shellcheck source=tools/images-common.sh
source "$script_dir/images-common.sh"
keep=false
while [[ $# -gt 0 ]]; do
    case $1 in
        --keep-storage) keep=true ;;
        -h|--help) awk 'NR >= 13 { if (!/^#/) exit; sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "$script: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

images_setup test-images
need curl "probe the relay's /healthz" curl
need python3 "pick free ports and read the relay's API" python3
need ffmpeg "publish to the relay in its image" ffmpeg
need ffprobe "check the recording" ffmpeg
need nginx "receive the relay's stream" nginx
need pgrep "find the relay in its buildah run" procps
rtmp_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
[[ -f $rtmp_module ]] \
    || fail "nginx's RTMP module is needed as the relay's target but is not installed (Debian package libnginx-mod-rtmp)"

relay_group=""
nginx_group=""
publisher=""
# Stops what it started (the relay's buildah run, nginx, ffmpeg), each by its own process group or ID.
stop_group() {
    local group=$1 waited
    [[ -n $group ]] || return 0
    kill -TERM -- "-$group" 2> /dev/null || true
    for waited in $(seq 1 100); do
        kill -0 -- "-$group" 2> /dev/null || break
        sleep 0.1
    done
    if kill -0 -- "-$group" 2> /dev/null; then
        kill -KILL -- "-$group" 2> /dev/null || true
        log "process group $group did not stop on SIGTERM within $((waited / 10)) s: killed"
    fi
    wait "$group" 2> /dev/null || true
}
cleanup() {
    local status=$?
    if [[ -n $publisher ]]; then
        kill -TERM "$publisher" 2> /dev/null || true
        wait "$publisher" 2> /dev/null || true
    fi
    stop_group "$relay_group"
    stop_group "$nginx_group"
    images_cleanup "$keep"
    exit "$status"
}
trap cleanup EXIT

# 1. The binary built on this host, and the Swift runtime libraries it links from the toolchain.
if [[ -n ${LIVERELAY_BINARY:-} ]]; then
    binary=$LIVERELAY_BINARY
else
    need swift "build liverelay" "(the Swift toolchain)"
    log "building liverelay on the host"
    swift build --product liverelay > "$state/swift-build.log" 2>&1 \
        || { tail -20 "$state/swift-build.log" >&2; fail "swift build failed"; }
    binary="$(swift build --show-bin-path)/liverelay"
fi
make_context "$binary" false
swift_libraries=("$state/context/swift-lib/"*)
[[ -e ${swift_libraries[0]} ]] || swift_libraries=()
log "binary $binary with ${#swift_libraries[@]} toolchain libraries"

# 2. Both images, on the debootstrapped base; named as tools/build-images.sh names them, tag `test`.
make_base
relay_image="$(relay_repository):test"
operator_image="$(operator_repository):test"
build_image Dockerfile.relay "$relay_image"
build_image Dockerfile.operator "$operator_image"

# 3. What is inside each.
expect_in_image() {
    local image=$1 user container command
    user=$(bah inspect --type image --format '{{.OCIv1.Config.User}}' "$image")
    [[ $user == 65532:65532 ]] || fail "$image runs as '$user', not 65532:65532"
    container=$(bah from --pull-never "$image")
    for command in "--help" "relay --help" "gateway --help" "operator --help" "local --help"; do
        # shellcheck disable=SC2086 # the subcommand and its flag are two words
        bah run --isolation chroot "$container" -- /usr/local/bin/liverelay $command > "$state/run.log" 2>&1 \
            || { cat "$state/run.log" >&2; fail "$image: liverelay $command failed"; }
        grep -q "USAGE" "$state/run.log" || { cat "$state/run.log" >&2; fail "$image: no usage from $command"; }
    done
    if bah run --isolation chroot "$container" -- /bin/sh -c true > /dev/null 2>&1; then
        fail "$image has a shell"
    fi
    bah rm "$container" > /dev/null
    log "$image: liverelay and its subcommands answer --help, user 65532, no shell"
}
expect_in_image "$relay_image"
expect_in_image "$operator_image"
# The libraries opened with dlopen, which ldd of the executable does not list: the relay's preview (libavformat and
# the rest) and the gateway's WebRTC (OpenSSL, libsrtp2 and NSS, which Debian's libsrtp2 uses).
expect_libraries() {
    local image=$1 container mount library
    shift
    container=$(bah from --pull-never "$image")
    mount=$(bah mount "$container")
    for library in "$@"; do
        compgen -G "$mount/usr/lib/*-linux-gnu/$library" > /dev/null || fail "$image lacks $library"
    done
    bah umount "$container" > /dev/null
    bah rm "$container" > /dev/null
    log "$image: holds $*"
}
expect_libraries "$relay_image" "libavformat.so.*" "libavcodec.so.*" "libavutil.so.*"
expect_libraries "$operator_image" libssl.so.3 libcrypto.so.3 libsrtp2.so.1 libnss3.so
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# 4. The target: nginx-rtmp on the host, recording every stream published to its application `live`. Its worker
# runs as nobody, so the recordings' directory is open to all.
nginx_port=$(free_port)
nginx_prefix="$state/nginx"
rm -rf "$nginx_prefix"
mkdir -p "$nginx_prefix/logs" "$nginx_prefix/records"
chmod 755 "$state" "$nginx_prefix"
chmod 777 "$nginx_prefix/records"
cat > "$nginx_prefix/nginx.conf" << EOF
load_module $rtmp_module;
worker_processes 1;
pid $nginx_prefix/logs/nginx.pid;
error_log $nginx_prefix/logs/error.log info;
events {
    worker_connections 64;
}
rtmp {
    access_log $nginx_prefix/logs/rtmp-access.log;
    server {
        listen 127.0.0.1:$nginx_port;
        application live {
            live on;
            record all;
            record_path $nginx_prefix/records;
            record_unique off;
        }
    }
}
EOF
setsid nginx -p "$nginx_prefix" -c "$nginx_prefix/nginx.conf" -e "$nginx_prefix/logs/error.log" \
    -g 'daemon off; master_process on;' > "$nginx_prefix/logs/nginx.stderr" 2>&1 &
nginx_group=$!
listening=false
for _ in $(seq 1 100); do
    if [[ -s $nginx_prefix/logs/nginx.pid ]] && (exec 3<> "/dev/tcp/127.0.0.1/$nginx_port") 2> /dev/null; then
        listening=true
        break
    fi
    kill -0 "$nginx_group" 2> /dev/null || break
    sleep 0.1
done
if [[ $listening != true ]]; then
    cat "$nginx_prefix/logs/nginx.stderr" "$nginx_prefix/logs/error.log" >&2 2> /dev/null || true
    fail "nginx-rtmp did not listen on 127.0.0.1:$nginx_port"
fi
log "nginx-rtmp records on 127.0.0.1:$nginx_port"

# 5. The relay in its image as 65532, its stream's target that nginx, its configuration and keys as a pod mounts them.
ingest_key="image-test-ingest-key"
target_key="image-test"
mkdir -p "$state/relay/secrets/ingest" "$state/relay/secrets/target"
printf '%s' "$ingest_key" > "$state/relay/secrets/ingest/streamKey"
printf '%s' "$target_key" > "$state/relay/secrets/target/key"
cat > "$state/relay/relay.yaml" << EOF
apiVersion: liverelay.io/v1alpha1
kind: LiveStream
metadata:
  name: image-test
spec:
  ingest:
    app: live
    streamKeySecretRef: { name: ingest, key: streamKey }
  targets:
    - name: nginx
      url: rtmp://127.0.0.1:$nginx_port/live
      streamKeySecretRef: { name: target, key: key }
EOF
container=$(bah from --pull-never "$relay_image")
bah copy --chown 65532:65532 "$container" "$state/relay/relay.yaml" /tmp/relay.yaml > /dev/null
bah copy --chown 65532:65532 "$container" "$state/relay/secrets" /tmp/secrets > /dev/null
rtmp_port=$(free_port)
http_port=$(free_port)
log "starting the relay in its image as 65532 (RTMP 127.0.0.1:$rtmp_port, HTTP 127.0.0.1:$http_port)"
setsid buildah "${storage[@]}" run --isolation chroot --network host --user 65532:65532 "$container" -- \
    /usr/local/bin/liverelay relay --config /tmp/relay.yaml --secrets-dir /tmp/secrets --log-level info \
    --listen "127.0.0.1:$rtmp_port" --http-listen "127.0.0.1:$http_port" --shutdown-grace 0 \
    > "$state/relay.log" 2>&1 &
relay_group=$!
healthy=false
for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$http_port/healthz" > /dev/null 2>&1; then healthy=true; break; fi
    kill -0 "$relay_group" 2> /dev/null || break
    sleep 0.1
done
if [[ $healthy != true ]]; then
    cat "$state/relay.log" >&2
    fail "the relay in $relay_image did not answer /healthz"
fi
curl -fsS "http://127.0.0.1:$http_port/readyz" > /dev/null || fail "the relay answers /healthz but not /readyz"
log "the relay in its image answers /healthz and /readyz"

# 6. Publish 5 s. The preview loads libavformat with dlopen on first use, so ldd alone does not prove the image has
# it: expect fMP4 fragments in the stream's status while the publish lasts.
ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i sine=frequency=440 \
    -t 5 -c:v libx264 -preset ultrafast -g 30 -pix_fmt yuv420p -c:a aac -f flv \
    "rtmp://127.0.0.1:$rtmp_port/live/$ingest_key" > "$state/ffmpeg.log" 2>&1 &
publisher=$!
previewed=false
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$http_port/api/v1/streams/image-test" 2> /dev/null | python3 -c '
import json, sys
preview = json.load(sys.stdin).get("preview") or {}
sys.exit(0 if preview.get("fragments", 0) > 0 else 1)'; then
        previewed=true
        break
    fi
    sleep 0.1
done
published=true
wait "$publisher" || published=false
publisher=""
if [[ $published != true ]]; then
    cat "$state/ffmpeg.log" "$state/relay.log" >&2
    fail "ffmpeg could not publish to the relay in its image"
fi
if [[ $previewed != true ]]; then
    cat "$state/relay.log" >&2
    curl -fsS "http://127.0.0.1:$http_port/api/v1/streams/image-test" >&2 || true
    fail "the relay in its image made no preview fragment (libavformat missing from the image?)"
fi
log "published 5 s; the relay in its image loads libavformat and packages the preview"

# 7. The recording at nginx: the relay unpublishes when the publisher has gone, and nginx logs the connection when
# it closes.
ended=false
for _ in $(seq 1 150); do
    if grep -q "PUBLISH \"live\" \"$target_key\"" "$nginx_prefix/logs/rtmp-access.log" 2> /dev/null; then
        ended=true
        break
    fi
    sleep 0.1
done
recording="$nginx_prefix/records/$target_key.flv"
if [[ $ended != true ]]; then
    cat "$state/relay.log" "$nginx_prefix/logs/error.log" >&2
    fail "the relay's publish to nginx-rtmp did not end within 15 s of the publisher's"
fi
[[ -s $recording ]] || fail "nginx-rtmp recorded nothing at $recording"
ffmpeg -hide_banner -loglevel error -i "$recording" -map 0:v:0 -f null - > "$state/decode.log" 2>&1 \
    || { cat "$state/decode.log" >&2; fail "the recording does not decode"; }
[[ ! -s $state/decode.log ]] || { cat "$state/decode.log" >&2; fail "the recording decodes with errors"; }
probe=$(ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=codec_name,nb_read_frames \
    -of csv=p=0 "$recording") || fail "ffprobe cannot read the recording"
IFS=, read -r codec frames <<< "$probe"
duration=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$recording") \
    || fail "ffprobe cannot read the recording's duration"
if [[ $codec != h264 ]] || ! awk -v d="$duration" -v f="$frames" 'BEGIN { exit !(d >= 4 && d <= 6 && f >= 120) }'; then
    fail "the recording is $codec, $duration s, $frames frames: not about 5 s of H.264 at 30 fps"
fi
log "nginx-rtmp recorded $duration s of $codec ($frames frames), decoded without an error"

# 8. The relay stops on SIGTERM (sent to liverelay itself, in the session of its buildah run: buildah, signalled,
# kills what it runs), and its log is clean.
relay_pid=$(pgrep -s "$relay_group" -x liverelay) || fail "liverelay does not run in its buildah run's session"
kill -TERM "$relay_pid"
for _ in $(seq 1 100); do
    kill -0 -- "-$relay_group" 2> /dev/null || break
    sleep 0.1
done
if kill -0 -- "-$relay_group" 2> /dev/null; then
    fail "the relay did not stop on SIGTERM within 10 s"
fi
status=0
wait "$relay_group" || status=$?
relay_group=""
if [[ $status != 0 ]]; then
    cat "$state/relay.log" >&2
    fail "the relay in its image exited with status $status on SIGTERM"
fi
bah rm "$container" > /dev/null
stop_group "$nginx_group"
nginx_group=""
# swift-log's StreamLogHandler: TIMESTAMP LEVEL LABEL : ... .
if awk '$2 ~ /^(warning|error|critical)$/' "$state/relay.log" | grep -q . \
    || grep -qiE 'error|permission denied|cannot set' "$state/relay.log"; then
    echo "$script: the relay's log in its image:" >&2
    cat "$state/relay.log" >&2
    fail "the relay's log has a warning, an error or a refused permission (above)"
fi
log "the relay's log has no warning and no error ($(wc -l < "$state/relay.log") lines at info level and above)"
log "passed: both images built from Dockerfile.relay and Dockerfile.operator and run"
