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
import Synchronization

/// How a relay process ended.
struct RelayExit: Hashable, Sendable, CustomStringConvertible {
    var signalled: Bool
    var status: Int32

    var description: String { self.signalled ? "killed by signal \(self.status)" : "exited with status \(self.status)" }
}

/// One `liverelay relay` child process.
///
/// Started with `--announce`, the child prints one JSON line with the ports it bound (it binds port 0, so there is
/// no race for a free port); ``start(executable:arguments:onAnnounce:onExit:)`` reads that line and reports it, then
/// keeps draining standard output. Standard error is inherited: the relay's log lines appear beside local mode's.
/// Exit is reported from `Process.terminationHandler`; nothing polls.
final class RelayProcess: Sendable {
    struct Ports: Hashable, Sendable, Decodable {
        var rtmpPort: Int
        var httpPort: Int
    }

    /// Distinguishes this start from earlier ones of the same stream, so a late exit of a replaced child is ignored.
    let generation: UInt64
    let pid: Int32
    private let process: Process

    private init(generation: UInt64, process: Process) {
        self.generation = generation
        self.process = process
        self.pid = process.processIdentifier
    }

    static func start(
        generation: UInt64,
        executable: String,
        arguments: [String],
        onAnnounce: @escaping @Sendable (Ports) -> Void,
        onExit: @escaping @Sendable (RelayExit) -> Void
    ) throws -> RelayProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        process.standardOutput = output
        process.terminationHandler = { process in
            onExit(
                RelayExit(signalled: process.terminationReason == .uncaughtSignal, status: process.terminationStatus)
            )
        }
        try process.run()
        // The child has its copy; ours would keep the pipe from reaching end of file.
        try? output.fileHandleForWriting.close()
        // One thread per relay reads its standard output to the end with blocking reads: simpler and sturdier than
        // `readabilityHandler` (which on Linux cannot be cleared from inside itself), and a relay prints one line.
        let reader = AnnounceReader(onAnnounce: onAnnounce)
        let handle = output.fileHandleForReading
        let thread = Thread {
            while true {
                let data = handle.availableData
                if data.isEmpty {
                    break
                }
                reader.consume(data)
            }
            try? handle.close()
        }
        thread.name = "relay-output-\(process.processIdentifier)"
        thread.start()
        return RelayProcess(generation: generation, process: process)
    }

    /// Asks the relay to drain and stop.
    func terminate() {
        if self.process.isRunning {
            kill(self.pid, SIGTERM)
        }
    }

    /// Ends the relay at once.
    func forceKill() {
        if self.process.isRunning {
            kill(self.pid, SIGKILL)
        }
    }
}

/// Collects standard output up to the first newline and decodes the announcement there; at most 4 KiB is kept, so
/// a child that prints without end costs nothing.
private final class AnnounceReader: Sendable {
    private struct State {
        var buffer = Data()
        var done = false
    }
    private let state = Mutex(State())
    private let onAnnounce: @Sendable (RelayProcess.Ports) -> Void

    init(onAnnounce: @escaping @Sendable (RelayProcess.Ports) -> Void) {
        self.onAnnounce = onAnnounce
    }

    func consume(_ data: Data) {
        let line: Data? = self.state.withLock { state in
            guard !state.done else {
                return nil
            }
            state.buffer.append(data)
            if let newline = state.buffer.firstIndex(of: UInt8(ascii: "\n")) {
                state.done = true
                return state.buffer[state.buffer.startIndex..<newline]
            }
            if state.buffer.count > 4096 {
                state.done = true
            }
            return nil
        }
        if let line, let ports = try? JSONDecoder().decode(RelayProcess.Ports.self, from: line) {
            self.onAnnounce(ports)
        }
    }
}

/// A process is itself: two handles are equal when they are the same handle.
extension RelayProcess: SupervisedRelay {
    static func == (lhs: RelayProcess, rhs: RelayProcess) -> Bool {
        lhs === rhs
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(self))
    }
}
