#!/usr/bin/env python3
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
# Where an idle liverelay's resident pages of its own executable are, by ELF section, and which faults mapped them:
# an instruction fetch, or a read of the page as data (and by which function). BENCHMARKS.md, "Relay memory".
#
#   perf record -e page-faults -c 1 -d -o relay.perf -- liverelay relay ...     # unstripped binary; let it idle
#   cp /proc/PID/maps relay.maps; tools/relay-page-faults.py BINARY PID /dev/null relay.maps   # while it runs
#   (stop it) perf script -i relay.perf -F addr,ip,sym,dso > relay.script
#   tools/relay-page-faults.py BINARY 0 relay.script relay.maps
#
# With a PID it records the resident pages (/proc/PID/pagemap, as root) in MAPS.present; without, it reads them from
# there. Needs readelf and nm (binutils).
import bisect, collections, re, struct, subprocess, sys

binary, pid, perf_out, maps_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
# Sections (VA ranges) of the file.
sections = []
for line in subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True).stdout.splitlines():
    m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
    if m and int(m.group(2), 16) > 0:
        sections.append((int(m.group(2), 16), int(m.group(2), 16) + int(m.group(3), 16), m.group(1)))
sections.sort()
starts = [s[0] for s in sections]
def section(va):
    i = bisect.bisect_right(starts, va) - 1
    if i >= 0 and sections[i][0] <= va < sections[i][1]:
        return sections[i][2]
    return "?"
# Symbols (functions) for text.
syms = []
for line in subprocess.run(["nm", "-n", "--defined-only", binary], capture_output=True, text=True).stdout.splitlines():
    parts = line.split(None, 2)
    if len(parts) == 3 and parts[1] in "tTwWrRdDbB":
        syms.append((int(parts[0], 16), parts[2]))
sym_starts = [s[0] for s in syms]
def symbol(va):
    i = bisect.bisect_right(sym_starts, va) - 1
    return syms[i][1] if i >= 0 else "?"
# The binary's mappings in the process.
maps = []
for line in open(maps_file):
    f = line.split()
    if len(f) >= 6 and f[5].endswith("/" + binary.split("/")[-1]) or (len(f) >= 6 and f[5] == binary):
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        maps.append((lo, hi, int(f[2], 16), f[1]))
base = min(m[0] - m[2] for m in maps)  # PIE load bias (offset 0 maps VA 0 for lld's layout)
# Resident pages from pagemap.
present = collections.Counter()
import os
resident_file = maps_file + ".present"
if pid > 0:
  with open(f"/proc/{pid}/pagemap", "rb") as pm, open(resident_file, "w") as rf:
    for lo, hi, off, perm in maps:
        pm.seek(lo // 4096 * 8)
        data = pm.read((hi - lo) // 4096 * 8)
        for i in range(0, len(data), 8):
            (entry,) = struct.unpack("<Q", data[i:i + 8])
            if entry >> 63 & 1:
                rf.write("%x\n" % (lo + i // 8 * 4096 - base))
for line in open(resident_file):
    present[section(int(line, 16))] += 4
print("resident KiB of the executable by section:")
for name, kib in present.most_common():
    print(f"  {kib:8d}  {name}")
print(f"  {sum(present.values()):8d}  total")
# Faults.
exec_faults = collections.Counter()
data_faults = collections.Counter()
data_by_reader = collections.Counter()
lo_all = min(m[0] for m in maps); hi_all = max(m[1] for m in maps)
line_re = re.compile(r"^\s*([0-9a-f]+)\s+(.*?)\s+\((.*?)\)\s+([0-9a-f]+)\s+(.*?)\s+\((.*?)\)\s*$")
for line in open(perf_out):
    m = line_re.match(line)
    if not m:
        continue
    addr = int(m.group(1), 16); ip = int(m.group(4), 16)
    f = [None, None, m.group(5), "(" + m.group(6).split("/")[-1] + ")"]
    if not (lo_all <= addr < hi_all):
        continue
    va = addr - base
    sec = section(va)
    in_binary = lo_all <= ip < hi_all
    reader = symbol(ip - base) if in_binary else " ".join(f[2:])[:60] or "?"
    if ip >> 12 == addr >> 12 or (sec == ".text" and abs(ip - addr) < 4096 * 2):
        exec_faults[sec] += 1
    else:
        data_faults[sec] += 1
        data_by_reader[(sec, reader[:100], symbol(va)[:80] if sec == ".text" else "")] += 1
print("\nfaults that fetch instructions, by section:", dict(exec_faults))
print("faults that read data, by section:", dict(data_faults))
print("\nreaders (section read, reading function, what it read in .text):")
for (sec, reader, what), n in data_by_reader.most_common(60):
    print(f"  {n:5d}  {sec:28s} {reader}  {what}")
