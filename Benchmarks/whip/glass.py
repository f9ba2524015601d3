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
"""Glass-to-glass latency on one clock: the capture time burned into each frame, read back at the RTMP sink.

  source   Writes raw I420 frames to stdout at a fixed rate, paced by this process's clock, as a camera would deliver
           them: a looped background (a raw file, e.g. ffmpeg's testsrc2) with two rows of 40 black or white 32x32
           blocks over its top 64 lines. Row one holds the wall clock (milliseconds since the epoch, modulo 2^32)
           read just before the frame is written, row two the frame number; each row's last 8 blocks are a check
           byte. An encoder (x264 in GStreamer for WHIP, in ffmpeg for RTMP) reads the pipe.
  sink     Plays an RTMP URL with ffmpeg (decoding on one thread, no probing), keeps the top 64 lines of each frame
           in grey, decodes both rows and notes the wall clock as the frame comes out of the decoder. Writes one
           JSON object: per frame, the number, the burned-in time and the latency (arrival - capture), in ms.
  report   Reads sink files and prints, per label, latency percentiles and frames received of the frames captured
           inside that label's measured window (--windows).

Both clocks are this machine's CLOCK_REALTIME (time.time()), so the latency is exact up to the milliseconds of the
stamp. What it includes: the encoder, the publisher's network stack, the path under test (WHIP: ICE/DTLS/SRTP,
jitter buffer, depacketizing, Opus to AAC, the gateway's RTMP publish, the relay; RTMP: the gateway's splice and the
relay), nginx-rtmp, the reader's RTMP client and its H.264 decoder. Standard library only.
"""

import argparse
import json
import mmap
import os
import signal
import statistics
import subprocess
import sys
import time

BLOCKS = 40
STAMP_ROWS = 2
BLACK, WHITE = 16, 235


def check_byte(value):
    return (sum(value.to_bytes(4, "little")) ^ 0xA5) & 0xFF


def row_bits(value):
    bits = [(value >> k) & 1 for k in range(32)]
    check = check_byte(value)
    return bits + [(check >> k) & 1 for k in range(8)]


def block_size(width):
    """Blocks fill the frame's width: 32 pixels at 1280, 16 at 640 (a macroblock or two: x264 keeps them clean)."""
    size = width // BLOCKS
    if size < 16:
        sys.exit("glass: frames narrower than %d pixels cannot hold the stamp" % (16 * BLOCKS))
    return size


def stamp(width, clock_ms, number):
    """The luma of the top 2 x block lines: two rows of blocks."""
    block = block_size(width)
    black, white = bytes([BLACK]) * block, bytes([WHITE]) * block
    out = []
    for value in (clock_ms, number):
        line = b"".join(white if bit else black for bit in row_bits(value))
        line += bytes([BLACK]) * (width - len(line))
        out.append(line * block)
    return b"".join(out)


def source(args):
    width, height = args.width, args.height
    frame_bytes = width * height * 3 // 2
    stamp_bytes = width * block_size(width) * STAMP_ROWS
    with open(args.background, "rb") as file:
        background = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    frames = len(background) // frame_bytes
    if frames == 0:
        sys.exit("glass source: the background holds no frame of %dx%d" % (width, height))
    view = memoryview(background)
    out = sys.stdout.buffer.fileno()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    start = time.monotonic()
    number = 0
    end = start + args.seconds if args.seconds else None
    while end is None or time.monotonic() < end:
        due = start + number / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1 / args.rate:
            # The encoder held the previous frame back (a busy machine): like a camera, the next frame is
            # captured now, not in a burst that catches up.
            start -= delay
        base = (number % frames) * frame_bytes
        parts = [stamp(width, int(time.time() * 1000) % 2**32, number), view[base + stamp_bytes : base + frame_bytes]]
        try:
            written = os.writev(out, parts)
            if written < frame_bytes:
                # A partial write (a signal): the rest, in order.
                rest = b"".join(bytes(part) for part in parts)[written:]
                while rest:
                    rest = rest[os.write(out, rest) :]
        except BrokenPipeError:
            return
        number += 1


def decode_row(grey, width, row):
    block = block_size(width)
    value = 0
    check = 0
    top = row * block
    inner = block // 2
    for k in range(BLOCKS):
        total = 0
        # The middle half of the block, away from the edges the encoder blurs.
        x = k * block + block // 4
        for y in range(top + block // 4, top + block // 4 + inner):
            total += sum(grey[y * width + x : y * width + x + inner])
        bit = 1 if total > inner * inner * (BLACK + WHITE) // 2 else 0
        if k < 32:
            value |= bit << k
        else:
            check |= bit << (k - 32)
    return value if check == check_byte(value) else None


def end(reader):
    """Stops an ffmpeg reader: its pipe closed first, so that it is not left blocked writing a frame nobody reads."""
    reader.stdout.close()
    reader.terminate()
    try:
        reader.wait(timeout=5)
    except subprocess.TimeoutExpired:
        reader.kill()
        reader.wait()


def sink(args):
    width = args.width
    block = block_size(width)
    command = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        "-fflags", "nobuffer", "-flags", "low_delay", "-analyzeduration", "1000000",
        "-threads", "1", "-rw_timeout", str(int(args.timeout * 1_000_000)),
        "-i", args.url, "-an", "-vf", "crop=%d:%d:0:0,format=gray" % (width, block * STAMP_ROWS),
        "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1",
    ]
    size = width * block * STAMP_ROWS
    frames = []
    bad = 0
    deadline = time.monotonic() + args.seconds

    class Stopped(Exception):
        pass

    def finish(*_):
        # Once: a second signal must not interrupt the stopping of the reader and the writing of the results.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise Stopped()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    reader = None
    try:
        while time.monotonic() < deadline:
            # nginx-rtmp plays a stream nobody publishes yet as one without tracks, which ffmpeg refuses: until the
            # publisher is there, the play is tried again.
            reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            while time.monotonic() < deadline:
                grey = reader.stdout.read(size)
                if grey is None or len(grey) < size:
                    break
                arrived = int(time.time() * 1000) % 2**32
                clock = decode_row(grey, width, 0)
                number = decode_row(grey, width, 1)
                if clock is None or number is None:
                    bad += 1
                    continue
                frames.append([number, clock, (arrived - clock) % 2**32])
            end(reader)
            reader = None
            time.sleep(0.2)
    except Stopped:
        pass
    finally:
        if reader is not None:
            end(reader)
    json.dump({"label": args.label, "url_stream": args.url.rsplit("/", 1)[-1], "frames": frames, "undecoded": bad},
              open(args.output, "w"))


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(args):
    windows = {}
    for line in open(args.windows):
        window = json.loads(line)
        windows[window["label"]] = window
    by_label = {}
    for path in args.files:
        data = json.load(open(path))
        by_label.setdefault(data["label"], []).append(data)
    failed = False
    for label, runs in by_label.items():
        window = windows[label]
        start = window["start_ms"] % 2**32
        length = window["end_ms"] - window["start_ms"]
        latencies = []
        received = 0
        expected = 0
        undecoded = 0
        empty = 0
        for run in runs:
            undecoded += run["undecoded"]
            # The frames captured inside the measured window (the warm-up before it is left out).
            kept = [f for f in run["frames"] if (f[1] - start) % 2**32 <= length]
            if not kept:
                empty += 1
                continue
            latencies += [f[2] for f in kept]
            numbers = {f[0] for f in kept}
            received += len(numbers)
            expected += max(numbers) - min(numbers) + 1
        line = {
            "label": label,
            "streams": len(runs),
            "streams_without_frames": empty,
            "frames": len(latencies),
            "received_percent": round(received * 100 / expected, 2) if expected else 0,
            "undecoded": undecoded,
        }
        if latencies:
            line.update(
                p50_ms=percentile(latencies, 50),
                p95_ms=percentile(latencies, 95),
                max_ms=max(latencies),
                mean_ms=round(statistics.fmean(latencies), 1),
            )
        if empty or not latencies:
            failed = True
        print(json.dumps(line))
    if failed:
        sys.exit("glass report: a sink stream received no decodable frame in the measured window")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    src = commands.add_parser("source")
    src.add_argument("--background", required=True)
    src.add_argument("--width", type=int, default=1280)
    src.add_argument("--height", type=int, default=720)
    src.add_argument("--rate", type=float, default=30)
    src.add_argument("--seconds", type=float, default=0)
    snk = commands.add_parser("sink")
    snk.add_argument("--url", required=True)
    snk.add_argument("--label", required=True)
    snk.add_argument("--output", required=True)
    snk.add_argument("--width", type=int, default=1280)
    snk.add_argument("--seconds", type=float, required=True)
    snk.add_argument("--timeout", type=float, default=30)
    rep = commands.add_parser("report")
    rep.add_argument("--windows", required=True, help="JSON lines: label, start_ms, end_ms (wall clock)")
    rep.add_argument("files", nargs="+")
    args = parser.parse_args()
    {"source": source, "sink": sink, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
