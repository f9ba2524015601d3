#!/usr/bin/env python3
# ===----------------------------------------------------------------------===//
#
# This source file is part of the liverelay open source project
#
# Copyright (c) 2026 the liverelay project authors
# Licensed under Apache License v2.0
#
# SPDX-License-Identifier: Apache-2.0
#
# ===----------------------------------------------------------------------===//
"""Preview latency, measured from the publisher's side.

Reads, at the same time:
  - the FLV the publisher writes (ffmpeg's tee output on our stdin): the wall time each video tag (by timestamp)
    left the publisher, since ffmpeg writes the tag to RTMP and to the pipe in the same loop;
  - the relay's live fragmented MP4 (`live.mp4`): the wall time each fragment arrived, and its video decode time
    (`tfdt`), so the frame it carries;
  - the relay's HLS playlist and nginx-rtmp's, both on disk where each writes it (polled every 50 ms): the wall time
    each segment appeared in the playlist, and the media time it covers (from the sum of the EXTINF durations before
    it). The relay serves that same file; polling it over HTTP twenty times a second would cost the relay more than
    the preview it measures.

With --hls-player, it also plays the relay's HLS as a player does (the playlist over HTTP once per --player-interval
seconds, and every new segment), so that the relay's CPU is measured serving one browser and one HLS player.

Writes one JSON object with the latency distributions to stdout. Standard library only.
"""

import argparse
import glob
import http.client
import json
import os
import statistics
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request

lock = threading.Lock()
sent = {}  # FLV video timestamp (ms) -> wall time it was written by the publisher
first_keyframe_ms = [None]
stop = threading.Event()


def read_flv(stream):
    header = stream.read(9)
    if len(header) < 9 or header[:3] != b"FLV":
        print("measure: stdin is not FLV", file=sys.stderr)
        return
    stream.read(4)
    while not stop.is_set():
        tag = stream.read(11)
        if len(tag) < 11:
            return
        now = time.time()
        kind = tag[0] & 0x1F
        size = int.from_bytes(tag[1:4], "big")
        timestamp = int.from_bytes(tag[4:7], "big") | (tag[7] << 24)
        body = stream.read(size)
        stream.read(4)
        if kind == 9 and len(body) > 1 and body[1] == 1:  # AVC NALU
            with lock:
                sent.setdefault(timestamp, now)
                if first_keyframe_ms[0] is None and (body[0] >> 4) == 1:
                    first_keyframe_ms[0] = timestamp


def boxes(data, offset=0, end=None):
    end = len(data) if end is None else end
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size < 8 or offset + size > end:
            return
        yield kind.decode("latin-1"), offset + 8, offset + size
        offset += size


def find(data, path, offset=0, end=None):
    for kind, start, stop_ in boxes(data, offset, end):
        if kind == path[0]:
            if len(path) == 1:
                yield start, stop_
            else:
                yield from find(data, path[1:], start, stop_)


def video_track(init):
    """The video track's id and timescale, from the init segment."""
    for start, end in find(init, ["moov", "trak"]):
        track_id = None
        for s, e in find(init, ["tkhd"], start, end):
            version = init[s]
            track_id = struct.unpack(">I", init[s + (20 if version == 1 else 12) : s + (24 if version == 1 else 16)])[0]
        handler = None
        for s, e in find(init, ["mdia", "hdlr"], start, end):
            handler = init[s + 8 : s + 12]
        for s, e in find(init, ["mdia", "mdhd"], start, end):
            version = init[s]
            timescale = struct.unpack(">I", init[s + (20 if version == 1 else 12) : s + (24 if version == 1 else 16)])[0]
            if handler == b"vide":
                return track_id, timescale
    return None, None


def read_fmp4(url, results):
    while not stop.is_set():
        try:
            response = urllib.request.urlopen(url, timeout=5)
            break
        except Exception:
            time.sleep(0.05)
    else:
        return
    buffer = b""
    track, timescale = None, None
    while not stop.is_set():
        chunk = response.read1(1 << 16) if hasattr(response, "read1") else response.read(4096)
        if not chunk:
            return
        now = time.time()
        buffer += chunk
        consumed = 0
        for kind, start, end in boxes(buffer):
            consumed = end
            if kind == "moov":
                track, timescale = video_track(buffer[:end])
            elif kind == "moof" and timescale:
                for traf_start, traf_end in find(buffer, ["traf"], start, end):
                    ids = [struct.unpack(">I", buffer[s + 4 : s + 8])[0] for s, _ in find(buffer, ["tfhd"], traf_start, traf_end)]
                    if not ids or ids[0] != track:
                        continue
                    for s, e in find(buffer, ["tfdt"], traf_start, traf_end):
                        version = buffer[s]
                        decode = struct.unpack(">Q" if version == 1 else ">I", buffer[s + 4 : s + (12 if version == 1 else 8)])[0]
                        results.append((decode * 1000.0 / timescale, now))
        buffer = buffer[consumed:]


def parse_playlist(text):
    sequence, segments, duration = 0, [], None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":")[1])
        elif line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            segments.append((line, duration))
            duration = None
    return sequence, segments


def poll_hls(source, results):
    """source: a file path (a glob: the relay names its directory per publish). results: list of (segment start ms,
    end ms, wall time it appeared)."""
    seen = {}
    cumulative = {}
    while not stop.is_set():
        try:
            paths = glob.glob(source)
            with open(paths[0]) as f:
                text = f.read()
        except Exception:
            time.sleep(0.05)
            continue
        now = time.time()
        sequence, segments = parse_playlist(text)
        for index, (name, duration) in enumerate(segments):
            number = sequence + index
            if number in seen:
                continue
            if number == 0:
                start = 0.0
            elif number - 1 in cumulative:
                start = cumulative[number - 1]
            else:
                seen[number] = None  # joined mid-stream: its media time is unknown
                continue
            cumulative[number] = start + duration * 1000
            seen[number] = now
            results.append((start, start + duration * 1000, now))
        time.sleep(0.05)


def play_hls(url, interval, counts):
    """An HLS player: the playlist every `interval` seconds, and each segment once, as it appears, over one
    keep-alive connection (as browsers and players hold theirs)."""
    parts = urllib.parse.urlsplit(url)
    connection = None
    fetched = set()

    def get(path):
        nonlocal connection
        if connection is None:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
        except Exception:
            connection.close()
            connection = None
            raise
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")
        return body

    while not stop.wait(interval):
        try:
            _, segments = parse_playlist(get(parts.path).decode())
            for name, _ in segments:
                if name not in fetched:
                    fetched.add(name)
                    counts["bytes"] += len(get(urllib.parse.urljoin(parts.path, name)))
                    counts["segments"] += 1
        except Exception:
            counts["errors"] += 1


def summary(values):
    if not values:
        return None
    values = sorted(values)
    return {
        "count": len(values),
        "median": round(statistics.median(values), 3),
        "p90": round(values[int(0.9 * (len(values) - 1))], 3),
        "min": round(values[0], 3),
        "max": round(values[-1], 3),
    }


def sent_at(media_ms):
    """When the publisher sent the video frame at `media_ms` of the output timeline (0 = its first keyframe)."""
    base = first_keyframe_ms[0] or 0
    target = media_ms + base
    with lock:
        if not sent:
            return None
        key = min(sent, key=lambda t: abs(t - target))
        return sent[key] if abs(key - target) <= 50 else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fmp4")
    parser.add_argument("--hls")
    parser.add_argument("--nginx-hls")
    parser.add_argument("--hls-player")
    parser.add_argument("--player-interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--skip", type=float, default=5, help="seconds at the start left out (startup)")
    arguments = parser.parse_args()

    fmp4, hls, nginx = [], [], []
    threads = [threading.Thread(target=read_flv, args=(sys.stdin.buffer,), daemon=True)]
    if arguments.fmp4:
        threads.append(threading.Thread(target=read_fmp4, args=(arguments.fmp4, fmp4), daemon=True))
    if arguments.hls:
        threads.append(threading.Thread(target=poll_hls, args=(arguments.hls, hls), daemon=True))
    if arguments.nginx_hls:
        threads.append(threading.Thread(target=poll_hls, args=(arguments.nginx_hls, nginx), daemon=True))
    player = {"segments": 0, "bytes": 0, "errors": 0}
    if arguments.hls_player:
        threads.append(
            threading.Thread(
                target=play_hls, args=(arguments.hls_player, arguments.player_interval, player), daemon=True
            )
        )
    for thread in threads:
        thread.start()
    time.sleep(arguments.seconds)
    stop.set()

    skip_ms = arguments.skip * 1000

    def frame_latencies(results):
        values = []
        for media, arrived in results:
            if media < skip_ms:
                continue
            when = sent_at(media)
            if when is not None:
                values.append(arrived - when)
        return values

    def segment_latencies(results):
        newest, oldest = [], []
        for start, end, appeared in results:
            if start < skip_ms:
                continue
            last = sent_at(end - 40) or sent_at(end - 80)
            first = sent_at(start)
            if last is not None:
                newest.append(appeared - last)
            if first is not None:
                oldest.append(appeared - first)
        return {"newest_frame": summary(newest), "oldest_frame": summary(oldest), "segments": len(results)}

    report = {
        "frames_sent": len(sent),
        "fmp4_fragment_latency_s": summary(frame_latencies(fmp4)),
        "relay_hls_playlist_latency_s": segment_latencies(hls),
        "nginx_hls_playlist_latency_s": segment_latencies(nginx),
    }
    if arguments.hls_player:
        report["hls_player"] = player
    json.dump(report, sys.stdout, indent=2)
    print()
    os._exit(0)


if __name__ == "__main__":
    main()
