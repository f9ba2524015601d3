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

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What happens to a child process's standard output or standard error.
public enum ProcessOutput: Sendable, Hashable {
    /// Sent to `/dev/null`.
    case discard
    /// Kept in memory, at most the last `limit` bytes (older bytes are dropped and the drop is noted), and returned
    /// in ``ProcessExit``. Use it for programs whose output is small or whose last lines explain a failure.
    case capture(limit: Int)
    /// Written to the file at this path, which is created or truncated. Use it for programs that leave children
    /// behind holding the stream open (nginx's workers), or whose output must survive for a post-mortem.
    case file(String)
}

/// How a child process ended, with what it printed.
public struct ProcessExit: Sendable, Hashable, CustomStringConvertible {
    /// Whether the process exited by itself or was ended by a signal.
    public enum Reason: Sendable, Hashable {
        /// The process called `exit`; ``ProcessExit/status`` is the exit code.
        case exited
        /// A signal ended the process; ``ProcessExit/status`` is the signal number.
        case signalled
    }

    /// Whether the process exited or was killed by a signal.
    public var reason: Reason
    /// The exit code, or the signal number when ``reason`` is ``Reason/signalled``.
    public var status: Int32
    /// What the process wrote to standard output, if it was captured; empty otherwise.
    public var standardOutput: String
    /// What the process wrote to standard error, if it was captured; empty otherwise.
    public var standardError: String

    /// Whether the process exited with status 0.
    public var succeeded: Bool { self.reason == .exited && self.status == 0 }

    public var description: String {
        switch self.reason {
        case .exited: "exit status \(self.status)"
        case .signalled: "killed by signal \(self.status)"
        }
    }
}

/// A child process started for a test: a thin wrapper around `Foundation.Process` that captures output safely,
/// waits without blocking a thread, and makes sure the child does not outlive the test.
///
/// Waiting uses `Process.terminationHandler` and a continuation; nothing polls. Captured output is read by one
/// thread per stream until end of file, and ``waitForExit()`` returns only when the process has exited *and* every
/// captured stream has reached end of file, so ``ProcessExit/standardError`` is complete. A child that hands a
/// captured stream on to a grandchild which outlives it would therefore keep ``waitForExit()`` waiting: send such
/// output to a ``ProcessOutput/file(_:)`` instead.
///
/// Foundation starts every child in a process group of its own (on Linux), so ``kill()`` ends the child's children
/// too. If the last reference to a `RunningProcess` goes away while the child still runs, the child's process group
/// is killed with `SIGKILL`; prefer the scoped
/// ``withRunningProcess(_:arguments:standardOutput:standardError:isolation:_:)`` so the moment is explicit.
public final class RunningProcess: Sendable {
    /// The absolute path of the program that runs.
    public let executablePath: String
    /// The arguments the program was started with (without the program name).
    public let arguments: [String]
    /// The child's process ID. After the child has exited, the ID may belong to another process.
    public let processIdentifier: Int32

    private let process: Process
    private let shared: Shared

    /// Starts `executable` with `arguments`. Standard input is `/dev/null`.
    ///
    /// - Parameters:
    ///   - executable: An absolute path, or a program name looked up in `PATH` and then in the `sbin` directories
    ///     (Debian installs nginx in `/usr/sbin`, which is not in every user's `PATH`).
    ///   - arguments: The arguments, without the program name.
    ///   - standardOutput: What happens to standard output; discarded by default.
    ///   - standardError: What happens to standard error; the last 64 KiB are kept by default.
    ///   - environment: Variables set for the child on top of this process's own.
    public static func launch(
        _ executable: String,
        arguments: [String],
        standardOutput: ProcessOutput = .discard,
        standardError: ProcessOutput = .capture(limit: 64 * 1024),
        environment: [String: String] = [:]
    ) throws -> RunningProcess {
        try RunningProcess(
            executablePath: try locateExecutable(executable),
            arguments: arguments,
            standardOutput: standardOutput,
            standardError: standardError,
            environment: environment
        )
    }

    private init(
        executablePath: String,
        arguments: [String],
        standardOutput: ProcessOutput,
        standardError: ProcessOutput,
        environment: [String: String]
    ) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executablePath)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardInput = FileHandle.nullDevice

        let outputSink = try OutputSink(standardOutput)
        let errorSink = try OutputSink(standardError)
        process.standardOutput = outputSink.childEnd
        process.standardError = errorSink.childEnd

        let shared = Shared(
            openStreams: (outputSink.pipe == nil ? 0 : 1) + (errorSink.pipe == nil ? 0 : 1),
            captureOutput: outputSink.limit,
            captureError: errorSink.limit
        )
        process.terminationHandler = { process in
            let reason: ProcessExit.Reason = process.terminationReason == .exit ? .exited : .signalled
            shared.processExited(reason: reason, status: process.terminationStatus)
        }

        do {
            try Self.withSignalsUnblocked { try process.run() }
        } catch {
            outputSink.closeParentEnds()
            errorSink.closeParentEnds()
            throw PeerError.startFailed("cannot start \(executablePath): \(error)")
        }
        // The child has its own copies now; ours would keep the pipes from ever reaching end of file.
        outputSink.closeChildEnd()
        errorSink.closeChildEnd()
        if let pipe = outputSink.pipe { shared.startReading(pipe.fileHandleForReading, stream: .output) }
        if let pipe = errorSink.pipe { shared.startReading(pipe.fileHandleForReading, stream: .error) }

        self.executablePath = executablePath
        self.arguments = arguments
        self.processIdentifier = process.processIdentifier
        self.process = process
        self.shared = shared
    }

    /// Runs `body` with no signal blocked on this thread, then restores the thread's mask.
    ///
    /// A child inherits the signal mask of the thread that spawns it, and `Process` does not reset it. The threads of
    /// the test process (the concurrency pool, NIO's loops) run with most signals blocked, so without this ffmpeg
    /// would start with SIGINT and SIGTERM blocked: ``interrupt()`` and ``terminate()`` would do nothing and it would
    /// run to its end.
    private static func withSignalsUnblocked<T>(_ body: () throws -> T) rethrows -> T {
        var none = sigset_t()
        var previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        return try body()
    }

    deinit {
        if !self.hasExited {
            self.signalProcessGroup(SIGKILL)
        }
    }

    /// The command line, quoted for a shell, for error messages.
    public var commandLine: String {
        ([self.executablePath] + self.arguments).map(shellQuoted).joined(separator: " ")
    }

    /// Whether the child has exited (and been reaped).
    public var hasExited: Bool { self.shared.hasExited }

    /// How the child ended, once it has exited and its captured output has been read to the end; `nil` before.
    public var exit: ProcessExit? { self.shared.result }

    /// What the child has written to standard error so far, if it is captured.
    public var standardErrorSoFar: String { self.shared.standardErrorSoFar }

    /// What the child has written to standard output so far, if it is captured.
    public var standardOutputSoFar: String { self.shared.standardOutputSoFar }

    /// Waits until the captured standard output contains `text`: true as soon as it does (an event from the reader,
    /// not a poll), false when the output ends without it or `timeout` passes first.
    public func waitForOutput(containing text: String, timeout: Duration = .seconds(30)) async -> Bool {
        let shared = self.shared
        let id = shared.newWaiterID()
        return await withTaskGroup(of: Bool?.self) { group in
            group.addTask { await shared.waitForOutput(text, id: id) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            if first == nil {
                shared.stopWaitingForOutput(id: id)
            }
            group.cancelAll()
            return first ?? false
        }
    }

    /// Waits until the child has exited and its captured output has been read to the end.
    ///
    /// If the waiting task is cancelled (for example by a test's time limit), the child's process group is killed
    /// with `SIGKILL` and the wait then completes as usual, so a cancelled test leaves nothing running.
    public func waitForExit() async -> ProcessExit {
        let shared = self.shared
        let result = await shared.wait(id: shared.newWaiterID()) {
            self.signalProcessGroup(SIGKILL)
        }
        // With kill-on-cancel, the waiter is never removed early, so it only resumes with a result.
        return result!
    }

    /// Waits at most `timeout` for the child to exit. Returns `nil` on timeout or when the waiting task is cancelled;
    /// unlike ``waitForExit()``, it leaves the child running in both cases.
    public func waitForExit(timeout: Duration) async -> ProcessExit? {
        let shared = self.shared
        if let result = shared.result { return result }
        return await withTaskGroup(of: ProcessExit?.self) { group in
            group.addTask {
                let id = shared.newWaiterID()
                return await shared.wait(id: id) { shared.stopWaiting(id: id) }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Sends `SIGTERM` to the child (not to its children).
    public func terminate() { self.signal(SIGTERM) }

    /// Sends `SIGINT` to the child, which ffmpeg treats like pressing `q`: it finishes the output cleanly.
    public func interrupt() { self.signal(SIGINT) }

    /// Sends `SIGKILL` to the child's whole process group, so the child's own children die with it.
    public func kill() { self.signalProcessGroup(SIGKILL) }

    /// Sends `signal` to the child if it has not exited yet.
    public func signal(_ signal: Int32) {
        guard !self.hasExited else { return }
        _ = sendSignal(self.processIdentifier, signal)
    }

    /// Sends `signal` to the child's process group if the child leads one (Foundation makes it so on Linux),
    /// else to the child alone. Does nothing once the child has exited.
    func signalProcessGroup(_ signal: Int32) {
        guard !self.hasExited else { return }
        let pid = self.processIdentifier
        if getpgid(pid) == pid {
            _ = sendSignal(-pid, signal)
        } else {
            _ = sendSignal(pid, signal)
        }
    }
}

/// Runs `executable`, passes it to `body`, and makes sure the child has ended when this returns or throws.
///
/// When `body` finishes while the child still runs, the child's process group is killed with `SIGKILL` and reaped.
/// Wait for the child inside `body` (``RunningProcess/waitForExit()``) when its normal end matters.
public func withRunningProcess<Result>(
    _ executable: String,
    arguments: [String],
    standardOutput: ProcessOutput = .discard,
    standardError: ProcessOutput = .capture(limit: 64 * 1024),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RunningProcess) async throws -> Result
) async throws -> Result {
    let process = try RunningProcess.launch(
        executable,
        arguments: arguments,
        standardOutput: standardOutput,
        standardError: standardError
    )
    return try await withEndedProcess(process, isolation: isolation, body)
}

/// Runs `body` with `process`, then kills and reaps the process if it still runs.
func withEndedProcess<Result>(
    _ process: RunningProcess,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RunningProcess) async throws -> Result
) async throws -> Result {
    do {
        let result = try await body(process)
        await endProcess(process)
        return result
    } catch {
        await endProcess(process)
        throw error
    }
}

private func endProcess(_ process: RunningProcess) async {
    guard !process.hasExited else { return }
    process.kill()
    // Reap it in a task of its own so the kill-and-wait survives the caller's cancellation.
    _ = await Task { await process.waitForExit() }.value
}

// MARK: - Shared state between the process object, the termination handler and the reader threads

private final class Shared: Sendable {
    enum Stream {
        case output
        case error
    }

    private struct State {
        var termination: (reason: ProcessExit.Reason, status: Int32)?
        var openStreams: Int
        var output: CapturedBytes?
        var error: CapturedBytes?
        var nextWaiterID = 0
        var waiters: [Int: CheckedContinuation<ProcessExit?, Never>] = [:]
        var abandonedWaiters: Set<Int> = []
        var outputWaiters: [Int: (needle: String, continuation: CheckedContinuation<Bool, Never>)] = [:]
        var outputClosed = false

        var result: ProcessExit? {
            guard let termination, self.openStreams == 0 else { return nil }
            return ProcessExit(
                reason: termination.reason,
                status: termination.status,
                standardOutput: self.output?.text ?? "",
                standardError: self.error?.text ?? ""
            )
        }
    }

    private let state: Mutex<State>

    init(openStreams: Int, captureOutput: Int?, captureError: Int?) {
        self.state = Mutex(
            State(
                openStreams: openStreams,
                output: captureOutput.map(CapturedBytes.init(limit:)),
                error: captureError.map(CapturedBytes.init(limit:))
            )
        )
    }

    var hasExited: Bool { self.state.withLock { $0.termination != nil } }

    var result: ProcessExit? { self.state.withLock { $0.result } }

    var standardErrorSoFar: String { self.state.withLock { $0.error?.text ?? "" } }

    var standardOutputSoFar: String { self.state.withLock { $0.output?.text ?? "" } }

    /// Suspends until captured standard output contains `needle` (true), or it ends without (false), or
    /// ``stopWaitingForOutput(id:)`` gives up (false).
    func waitForOutput(_ needle: String, id: Int) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let immediate: Bool? = self.state.withLock { state in
                if state.output?.text.contains(needle) == true { return true }
                if state.outputClosed || state.output == nil || state.abandonedWaiters.remove(id) != nil {
                    return false
                }
                state.outputWaiters[id] = (needle, continuation)
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    func stopWaitingForOutput(id: Int) {
        let waiter = self.state.withLock { state in
            guard let waiter = state.outputWaiters.removeValue(forKey: id) else {
                state.abandonedWaiters.insert(id)
                return nil as CheckedContinuation<Bool, Never>?
            }
            return waiter.continuation
        }
        waiter?.resume(returning: false)
    }

    func newWaiterID() -> Int {
        self.state.withLock { state in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
    }

    /// Suspends until the result is known, or until ``stopWaiting(id:)`` abandons this waiter (then `nil`).
    func wait(id: Int, onCancel: @escaping @Sendable () -> Void) async -> ProcessExit? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ProcessExit?, Never>) in
                let immediate: ProcessExit?? = self.state.withLock { state in
                    if let result = state.result { return .some(result) }
                    if state.abandonedWaiters.remove(id) != nil { return .some(nil) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            onCancel()
        }
    }

    func stopWaiting(id: Int) {
        let continuation = self.state.withLock { state -> CheckedContinuation<ProcessExit?, Never>? in
            if let continuation = state.waiters.removeValue(forKey: id) { return continuation }
            // The cancellation arrived before the waiter was registered.
            state.abandonedWaiters.insert(id)
            return nil
        }
        continuation?.resume(returning: nil)
    }

    func processExited(reason: ProcessExit.Reason, status: Int32) {
        self.state.withLock { $0.termination = (reason, status) }
        self.resumeWaitersIfDone()
    }

    func startReading(_ handle: FileHandle, stream: Stream) {
        Thread.detachNewThread {
            let fd = handle.fileDescriptor
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                let found: [CheckedContinuation<Bool, Never>] = self.state.withLock { state in
                    switch stream {
                    case .output: state.output?.append(buffer[0..<count])
                    case .error: state.error?.append(buffer[0..<count])
                    }
                    guard case .output = stream, !state.outputWaiters.isEmpty, let text = state.output?.text else {
                        return []
                    }
                    let ready = state.outputWaiters.filter { text.contains($0.value.needle) }
                    for id in ready.keys { state.outputWaiters[id] = nil }
                    return ready.values.map(\.continuation)
                }
                for waiter in found { waiter.resume(returning: true) }
            }
            try? handle.close()
            let unmet: [CheckedContinuation<Bool, Never>] = self.state.withLock { state in
                state.openStreams -= 1
                guard case .output = stream else { return [] }
                state.outputClosed = true
                defer { state.outputWaiters = [:] }
                return state.outputWaiters.values.map(\.continuation)
            }
            for waiter in unmet { waiter.resume(returning: false) }
            self.resumeWaitersIfDone()
        }
    }

    private func resumeWaitersIfDone() {
        let ready: (ProcessExit, [CheckedContinuation<ProcessExit?, Never>])? = self.state.withLock { state in
            guard let result = state.result else { return nil }
            let waiters = Array(state.waiters.values)
            state.waiters.removeAll()
            return (result, waiters)
        }
        guard let (result, waiters) = ready else { return }
        for waiter in waiters { waiter.resume(returning: result) }
    }
}

/// The last `limit` bytes of a stream, and how many were dropped before them.
private struct CapturedBytes {
    let limit: Int
    private var bytes: [UInt8] = []
    private var dropped = 0

    init(limit: Int) { self.limit = max(limit, 1) }

    mutating func append(_ chunk: ArraySlice<UInt8>) {
        self.bytes.append(contentsOf: chunk)
        // Trim only when twice over the limit, so appending stays amortised O(1).
        if self.bytes.count > 2 * self.limit {
            let excess = self.bytes.count - self.limit
            self.bytes.removeFirst(excess)
            self.dropped += excess
        }
    }

    var text: String {
        let excess = max(self.bytes.count - self.limit, 0)
        let kept = String(decoding: self.bytes[excess...], as: UTF8.self)
        let dropped = self.dropped + excess
        return dropped == 0 ? kept : "[… \(dropped) earlier bytes dropped …]\n" + kept
    }
}

/// One standard stream of the child, as set up before launch.
private struct OutputSink {
    /// The pipe whose read end we drain, when capturing.
    let pipe: Pipe?
    /// How many bytes to keep, when capturing.
    let limit: Int?
    /// What the child gets.
    let childEnd: FileHandle

    init(_ disposition: ProcessOutput) throws {
        switch disposition {
        case .discard:
            self.pipe = nil
            self.limit = nil
            self.childEnd = FileHandle.nullDevice
        case .capture(let limit):
            let pipe = Pipe()
            self.pipe = pipe
            self.limit = limit
            self.childEnd = pipe.fileHandleForWriting
        case .file(let path):
            guard FileManager.default.createFile(atPath: path, contents: nil),
                let handle = FileHandle(forWritingAtPath: path)
            else {
                throw PeerError.startFailed("cannot create output file \(path)")
            }
            self.pipe = nil
            self.limit = nil
            self.childEnd = handle
        }
    }

    func closeChildEnd() {
        // FileHandle.close is idempotent, so this is safe even where Process already closed the pipe's write end.
        if self.childEnd !== FileHandle.nullDevice {
            try? self.childEnd.close()
        }
    }

    func closeParentEnds() {
        self.closeChildEnd()
        try? self.pipe?.fileHandleForReading.close()
    }
}

// MARK: - Helpers

/// Finds `name` in `PATH` and then in the usual `sbin`/`bin` directories; a name with a `/` is taken as a path.
func locateExecutable(_ name: String) throws -> String {
    if name.contains("/") {
        guard access(name, X_OK) == 0 else { throw PeerError.executableNotFound(name, searched: []) }
        return name
    }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    var directories = path.split(separator: ":").map(String.init)
    for fallback in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    where !directories.contains(fallback) {
        directories.append(fallback)
    }
    for directory in directories {
        let candidate = directory + "/" + name
        if access(candidate, X_OK) == 0 { return candidate }
    }
    throw PeerError.executableNotFound(name, searched: directories)
}

/// `kill(2)`, named apart from ``RunningProcess/kill()``.
func sendSignal(_ pid: Int32, _ signal: Int32) -> Bool {
    kill(pid, signal) == 0
}

/// Quotes `word` for a POSIX shell when it contains anything but safe characters.
func shellQuoted(_ word: String) -> String {
    let safe = word.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_./:=,@%+".contains($0)) }
    if safe && !word.isEmpty { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
