//===----------------------------------------------------------------------===//
//
// This source file is part of the liverelay open source project
//
// Copyright (c) 2026 the liverelay project authors
// Licensed under Apache License v2.0
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//

import Foundation

/// CPU time and resident memory of a set of processes, read from `/proc` (Linux only).
struct ProcessSample: Codable, Sendable {
    /// Time on a CPU of every process, in seconds: the scheduler's nanoseconds per thread where the kernel keeps
    /// them (`/proc/PID/task/TID/schedstat`), else utime + stime in clock ticks.
    var cpuSeconds: Double
    /// Sum of VmRSS, in kibibytes.
    var rssKiB: Int
    var processes: Int
}

enum ProcFS {
    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// The processes `roots` and their direct children (nginx's master and its workers).
    static func sample(roots: [Int32]) -> ProcessSample {
        var pids = Set(roots)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), let stat = Self.stat(pid), roots.contains(stat.ppid) else { continue }
            pids.insert(pid)
        }
        var sample = ProcessSample(cpuSeconds: 0, rssKiB: 0, processes: 0)
        for pid in pids {
            guard let stat = Self.stat(pid) else { continue }
            sample.cpuSeconds += Self.runSeconds(pid) ?? Double(stat.ticks) / Self.ticksPerSecond
            sample.rssKiB += Self.rssKiB(pid) ?? 0
            sample.processes += 1
        }
        return sample
    }

    /// Parent and utime + stime (fields 4, 14 and 15 of `proc(5)`), read after the command name's last `)`.
    static func stat(_ pid: Int32) -> (ppid: Int32, ticks: UInt64)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else {
            return nil
        }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let ppid = Int32(fields[1]), let user = UInt64(fields[11]),
            let system = UInt64(fields[12])
        else {
            return nil
        }
        return (ppid, user + system)
    }

    /// The time on a CPU of the process's threads, in nanoseconds (the first field of each thread's `schedstat`).
    ///
    /// utime + stime count 10 ms ticks: nginx-rtmp's worker relaying one stream for 20 s runs about 8 of them, so a
    /// tick either way moved a 1 × 1 ratio by an eighth. The threads' sum misses a thread that ends within the
    /// window; the relay's and nginx-rtmp's threads live as long as the process.
    static func runSeconds(_ pid: Int32) -> Double? {
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else {
            return nil
        }
        var nanoseconds: UInt64 = 0
        var read = false
        for thread in threads {
            // A thread that ended since the listing has no file any more.
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/schedstat", encoding: .utf8),
                let first = text.split(separator: " ").first, let value = UInt64(first)
            else {
                continue
            }
            nanoseconds += value
            read = true
        }
        return read ? Double(nanoseconds) / 1e9 : nil
    }

    static func rssKiB(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "")
        }
        return nil
    }
}
