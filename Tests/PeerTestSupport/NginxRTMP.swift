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

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A real nginx with the RTMP module, started for one test: the reference server that the relay pushes to and that
/// ffmpeg publishes to.
///
/// ``start(applications:tls:timeout:)`` writes a configuration into a fresh prefix directory under the temporary
/// directory and runs, with one worker,
///
///     nginx -p PREFIX -c PREFIX/nginx.conf -e PREFIX/logs/error.log -g 'daemon off; master_process on;'
///
/// The prefix holds everything nginx writes:
///
/// - `nginx.conf`, `owner.pid` (the test process that started nginx);
/// - `logs/error.log` (level `info`, so connects and disconnects are there), `logs/nginx.stderr`, `logs/nginx.pid`;
/// - `logs/rtmp-access.log`: one line per finished RTMP connection, which
///   ``waitForPublishEnded(app:stream:count:timeout:)`` watches;
/// - `records/APP/STREAM.flv`: every stream published to an application, recorded whole (`record all`,
///   `record_unique off`, so a second publish of the same stream overwrites the first);
/// - `tls/cert.pem` and `tls/key.pem` when started with `tls: true`.
///
/// Ports: one RTMP listener on `127.0.0.1`, an HTTP listener serving nginx-rtmp's `/stat` page (used by
/// ``waitForPublishStarted(app:stream:timeout:)``), and with `tls: true` an nginx `stream` server that terminates TLS
/// with a self-signed certificate for `127.0.0.1` and `localhost` and forwards the plain bytes to the RTMP listener.
///
/// Lifetime: prefer ``withNginxRTMP(applications:tls:isolation:_:)``, which always stops nginx and keeps the prefix
/// for a post-mortem only when the body throws. Without it, call ``stop()``; if the last reference goes away first,
/// nginx's process group is killed. When a test process crashes, the next ``start(applications:tls:timeout:)`` in any
/// test process kills the nginx it left behind (found through `owner.pid` and `logs/nginx.pid`).
///
/// Failure injection: ``kill()`` ends nginx as a crash would, and ``restart(timeout:)`` brings up a new one on the same
/// ports, for testing that a client reconnects.
public final class NginxRTMP: Sendable {
    /// The RTMP applications, each with `live on` and recording.
    public let applications: [String]
    /// The prefix directory holding the configuration, logs, recordings and certificate.
    public let prefix: String
    /// The plain RTMP port on 127.0.0.1.
    public let rtmpPort: Int
    /// The RTMPS port on 127.0.0.1 (TLS terminated by nginx's `stream` module), when started with `tls: true`.
    public let tlsPort: Int?
    /// The HTTP port on 127.0.0.1 serving nginx-rtmp's statistics at `/stat`.
    public let statPort: Int
    /// The self-signed certificate (PEM) of the RTMPS port, when started with `tls: true`. It is its own issuer, so
    /// it is also the CA file that a client passes to trust it (`--ca-file`, ffmpeg's `-ca_file`).
    public let certificatePath: String?
    /// The private key (PEM) of ``certificatePath``.
    public let privateKeyPath: String?

    let process: RunningProcess
    let ports: Ports

    private init(
        applications: [String],
        prefix: String,
        ports: Ports,
        tls: TLSFiles?,
        process: RunningProcess
    ) {
        self.applications = applications
        self.prefix = prefix
        self.rtmpPort = ports.rtmp
        self.tlsPort = ports.tls
        self.statPort = ports.stat
        self.certificatePath = tls?.certificate
        self.privateKeyPath = tls?.key
        self.process = process
        self.ports = ports
    }

    /// The master process's ID.
    public var processIdentifier: Int32 { self.process.processIdentifier }

    /// nginx's error log.
    public var errorLogPath: String { self.prefix + "/logs/error.log" }

    /// The RTMP access log: one line per finished connection, in ``accessLogFormat`` (fields separated by `|`).
    public var accessLogPath: String { self.prefix + "/logs/rtmp-access.log" }

    /// `rtmp://127.0.0.1:PORT/APP`, the URL to publish to or play from, without a stream name.
    public func url(app: String) -> String { "rtmp://127.0.0.1:\(self.rtmpPort)/\(app)" }

    /// `rtmp://127.0.0.1:PORT/APP/STREAM`.
    public func url(app: String, stream: String) -> String { self.url(app: app) + "/" + stream }

    /// `rtmps://127.0.0.1:TLSPORT/APP`. Only valid when started with `tls: true`.
    public func rtmpsURL(app: String) -> String {
        guard let tlsPort = self.tlsPort else {
            preconditionFailure("rtmpsURL(app:) needs NginxRTMP started with tls: true")
        }
        return "rtmps://127.0.0.1:\(tlsPort)/\(app)"
    }

    /// `rtmps://127.0.0.1:TLSPORT/APP/STREAM`. Only valid when started with `tls: true`.
    public func rtmpsURL(app: String, stream: String) -> String { self.rtmpsURL(app: app) + "/" + stream }

    /// Where the stream `stream` published to `app` is recorded. The file exists from the first media message on and
    /// is complete once ``waitForPublishEnded(app:stream:count:timeout:)`` returns.
    public func recordingPath(app: String, stream: String) -> String {
        self.prefix + "/records/\(app)/\(stream).flv"
    }

    /// The last part of nginx's error log and its standard error, for error messages.
    public func diagnostics(maxBytes: Int = 8 * 1024) -> String {
        nginxDiagnostics(prefix: self.prefix, maxBytes: maxBytes)
    }

    /// Stops nginx and waits until its master and worker have exited. Idempotent.
    ///
    /// It sends `SIGTERM` (nginx's fast shutdown, which closes open RTMP connections, unlike `SIGQUIT`'s graceful
    /// shutdown that would wait for publishers to leave), waits up to five seconds, then kills the process group.
    /// Nothing is deleted: the prefix stays for a post-mortem until ``removeFiles()``.
    public func stop() async {
        let process = self.process
        if !process.hasExited {
            process.terminate()
            if await process.waitForExit(timeout: .seconds(5)) == nil {
                process.kill()
                // In a task of its own, so that reaping survives the caller's cancellation.
                _ = await Task { await process.waitForExit() }.value
            }
        }
        // A master that died abnormally (killed from outside) leaves its worker behind in its process group, which
        // the kernel does not recycle while the worker lives.
        if let exit = process.exit, !exit.succeeded {
            _ = sendSignal(-process.processIdentifier, SIGKILL)
        }
    }

    /// Deletes the prefix directory with its logs and recordings. Call it only after ``stop()``.
    public func removeFiles() {
        try? FileManager.default.removeItem(atPath: self.prefix)
    }
}

/// Starts nginx-rtmp, runs `body`, and always stops nginx afterwards, also when `body` throws or is cancelled.
///
/// The prefix directory (logs, recordings, certificate) is deleted when `body` returns normally, unless the
/// environment variable `LIVERELAY_KEEP_PEER_FILES` is set. When `body` throws, it is kept and its path is printed to
/// standard error, for a post-mortem. Copy a recording out inside `body` if it must outlive the scope.
///
/// - Parameters:
///   - applications: The RTMP applications to create, each recording every stream published to it.
///   - tls: Whether to add the RTMPS front (``NginxRTMP/tlsPort``, ``NginxRTMP/certificatePath``).
///   - isolation: The caller's isolation, inherited by `body`.
///   - body: The test, given the running server.
public func withNginxRTMP<Result>(
    applications: [String],
    tls: Bool = false,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (NginxRTMP) async throws -> Result
) async throws -> Result {
    let nginx = try await NginxRTMP.start(applications: applications, tls: tls)
    let result: Result
    do {
        result = try await body(nginx)
    } catch {
        await Task { await nginx.stop() }.value
        FileHandle.standardError.write(Data("note: nginx files kept for a post-mortem in \(nginx.prefix)\n".utf8))
        throw error
    }
    await Task { await nginx.stop() }.value
    if ProcessInfo.processInfo.environment["LIVERELAY_KEEP_PEER_FILES"] == nil {
        nginx.removeFiles()
    }
    return result
}

// MARK: - Starting

extension NginxRTMP {
    /// How often ``start(applications:tls:timeout:)`` picks new ports when nginx finds one taken.
    static let maximumStartAttempts = 5

    /// Starts nginx-rtmp and returns when every port accepts TCP connections.
    ///
    /// Ports come from ``freeTCPPort()``. If nginx cannot bind one because something took it in the meantime, nginx
    /// is started again on new ports, up to five times.
    ///
    /// - Parameters:
    ///   - applications: The RTMP applications to create. Names are limited to letters, digits, `-` and `_`.
    ///   - tls: Whether to add the RTMPS front with a self-signed certificate.
    ///   - timeout: How long nginx may take to listen, for each attempt.
    /// - Throws: ``PeerError`` with nginx's error log when nginx exits or does not listen in time.
    public static func start(
        applications: [String],
        tls: Bool = false,
        timeout: Duration = .seconds(15)
    ) async throws -> NginxRTMP {
        try validate(applications: applications)
        reapOrphanedNginx()
        let prefix = try makePrefixDirectory(applications: applications)
        let tlsFiles = tls ? try await makeCertificate(in: prefix) : nil
        for attempt in 1...maximumStartAttempts {
            let ports = try Ports(tls: tls)
            if let nginx = try await launch(
                applications: applications,
                prefix: prefix,
                ports: ports,
                tls: tlsFiles,
                timeout: timeout
            ) {
                return nginx
            }
            guard attempt < maximumStartAttempts else {
                throw PeerError.startFailed(
                    "nginx found its ports taken \(attempt) times; \(nginxDiagnostics(prefix: prefix, maxBytes: 8 * 1024))"
                )
            }
        }
        preconditionFailure("the last attempt either returns or throws")
    }

    /// Kills nginx at once with `SIGKILL` to its process group, as a crashing server would go: the kernel resets
    /// open connections and nothing is logged for them. Follow with ``stop()`` (which then only reaps) or
    /// ``restart(timeout:)``.
    public func kill() {
        self.process.kill()
    }

    /// Stops this nginx if it still runs, then starts a new one with the same applications on the same ports, so that
    /// clients configured with the old URLs reach it.
    ///
    /// The new server gets a fresh prefix directory (its own logs and recordings; this one's stay for inspection and
    /// ``removeFiles()``), and a copy of this server's certificate, so a client trusting ``certificatePath`` still
    /// trusts it. While the old processes' ports are being released, "address already in use" is retried on the same
    /// ports until `timeout`; should another process have taken a port meanwhile, this fails with
    /// ``PeerError/Code/startFailed``.
    ///
    /// The returned server is the caller's to ``stop()``: ``withNginxRTMP(applications:tls:isolation:_:)`` only stops
    /// the server it started. If the caller forgets, the last reference going away still kills it.
    public func restart(timeout: Duration = .seconds(15)) async throws -> NginxRTMP {
        await self.stop()
        let prefix = try Self.makePrefixDirectory(applications: self.applications)
        var tlsFiles: TLSFiles?
        if let certificate = self.certificatePath, let key = self.privateKeyPath {
            let files = TLSFiles(certificate: prefix + "/tls/cert.pem", key: prefix + "/tls/key.pem")
            do {
                try FileManager.default.copyItem(atPath: certificate, toPath: files.certificate)
                try FileManager.default.copyItem(atPath: key, toPath: files.key)
            } catch {
                throw PeerError.startFailed("cannot copy the certificate into \(prefix): \(error)")
            }
            tlsFiles = files
        }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let nginx = try await Self.launch(
                applications: self.applications,
                prefix: prefix,
                ports: self.ports,
                tls: tlsFiles,
                timeout: deadline - clock.now
            ) {
                return nginx
            }
            guard clock.now < deadline else {
                throw PeerError.startFailed(
                    "nginx could not bind \(self.ports) again within \(timeout); "
                        + nginxDiagnostics(prefix: prefix, maxBytes: 8 * 1024)
                )
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Writes the configuration for `ports` into `prefix`, starts nginx and waits until it listens.
    ///
    /// - Returns: The running server, or `nil` when nginx exited because a port was taken.
    private static func launch(
        applications: [String],
        prefix: String,
        ports: Ports,
        tls: TLSFiles?,
        timeout: Duration
    ) async throws -> NginxRTMP? {
        let configuration = Self.configuration(
            prefix: prefix,
            applications: applications,
            ports: ports,
            modules: try locateModules(tls: tls != nil),
            tls: tls
        )
        try writeFile(prefix + "/nginx.conf", configuration)
        let errorLogStart = fileSize(prefix + "/logs/error.log")
        let process = try RunningProcess.launch(
            try locateExecutable("nginx"),
            arguments: [
                "-p", prefix, "-c", prefix + "/nginx.conf", "-e", prefix + "/logs/error.log",
                "-g", "daemon off; master_process on;",
            ],
            standardOutput: .discard,
            standardError: .file(prefix + "/logs/nginx.stderr")
        )
        switch await waitUntilListening(process, prefix: prefix, ports: ports, timeout: timeout) {
        case .listening:
            return NginxRTMP(applications: applications, prefix: prefix, ports: ports, tls: tls, process: process)
        case .exited(let exit):
            if readFile(prefix + "/logs/error.log", from: errorLogStart).contains("Address already in use") {
                return nil
            }
            throw PeerError.startFailed(
                "nginx exited (\(exit)) before listening on \(ports); "
                    + nginxDiagnostics(prefix: prefix, maxBytes: 8 * 1024)
            )
        case .cancelled:
            process.kill()
            _ = await Task { await process.waitForExit() }.value
            throw CancellationError()
        case .timedOut:
            process.kill()
            _ = await Task { await process.waitForExit() }.value
            throw PeerError.timeout(
                "nginx did not listen on \(ports) within \(timeout); "
                    + nginxDiagnostics(prefix: prefix, maxBytes: 8 * 1024)
            )
        }
    }

    private enum Readiness {
        case listening
        case exited(ProcessExit)
        case timedOut
        case cancelled
    }

    /// Polls with a short, bounded backoff (10 ms doubling to 100 ms) until nginx has written its PID file and all
    /// ports accept a connection, the process exits, or `timeout` passes.
    ///
    /// The master binds every listener before it writes the PID file and forks the worker, and the kernel queues
    /// connections until the worker accepts them, so a port that accepts is ready to use. The PID file proves that
    /// it is this nginx that listens, not whoever took a port from under it.
    private static func waitUntilListening(
        _ process: RunningProcess,
        prefix: String,
        ports: Ports,
        timeout: Duration
    ) async -> Readiness {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var delay = Duration.milliseconds(10)
        while true {
            if process.hasExited, let exit = await process.waitForExit(timeout: .seconds(1)) {
                return .exited(exit)
            }
            let pid = readFile(prefix + "/logs/nginx.pid").trimmingCharacters(in: .whitespacesAndNewlines)
            if pid == String(process.processIdentifier) && ports.all.allSatisfy(acceptsTCPConnection(port:)) {
                return .listening
            }
            if clock.now >= deadline {
                return .timedOut
            }
            do {
                try await Task.sleep(for: delay)
            } catch {
                return .cancelled
            }
            delay = min(delay * 2, .milliseconds(100))
        }
    }

    private static func validate(applications: [String]) throws {
        guard !applications.isEmpty else {
            throw PeerError.invalidArgument("NginxRTMP needs at least one application")
        }
        for application in applications where !isSafeName(application) {
            throw PeerError.invalidArgument(
                "application name '\(application)' must be letters, digits, '-' or '_' (it goes into nginx.conf)"
            )
        }
        guard Set(applications).count == applications.count else {
            throw PeerError.invalidArgument("application names must be distinct: \(applications)")
        }
    }

    private static func makePrefixDirectory(applications: [String]) throws -> String {
        let base = NSTemporaryDirectory().hasSuffix("/") ? NSTemporaryDirectory() : NSTemporaryDirectory() + "/"
        var template = Array((base + "liverelay-nginx-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard created != nil else {
            throw PeerError.startFailed("mkdtemp in \(base) failed: \(errnoDescription())")
        }
        let prefix = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard prefix.allSatisfy({ $0.isASCII && !"\"'$;{}\\ \t\n".contains($0) }) else {
            throw PeerError.startFailed("temporary directory \(prefix) has characters nginx.conf cannot carry")
        }
        // The worker runs as another user (nobody) when the tests run as root: it must reach and write the
        // recordings. The logs are opened by the master.
        chmod(prefix, 0o755)
        for directory in ["logs", "tmp", "tls", "records"] {
            try makeDirectory(prefix + "/" + directory, mode: 0o755)
        }
        chmod(prefix + "/records", 0o777)
        for application in applications {
            try makeDirectory(prefix + "/records/" + application, mode: 0o777)
        }
        try writeFile(prefix + "/owner.pid", "\(getpid())\n")
        return prefix
    }

    private static func makeCertificate(in prefix: String) async throws -> TLSFiles {
        let files = TLSFiles(certificate: prefix + "/tls/cert.pem", key: prefix + "/tls/key.pem")
        try await TestCertificate.make(certificate: files.certificate, key: files.key)
        return files
    }

    private static func locateModules(tls: Bool) throws -> Modules {
        let directories = ["/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/local/lib/nginx/modules"]
        func locate(_ file: String) throws -> String {
            for directory in directories where access(directory + "/" + file, R_OK) == 0 {
                return directory + "/" + file
            }
            throw PeerError.executableNotFound(file, searched: directories)
        }
        return Modules(rtmp: try locate("ngx_rtmp_module.so"), stream: tls ? try locate("ngx_stream_module.so") : nil)
    }

    /// Kills nginx masters that a crashed test process left running.
    ///
    /// A prefix directory whose `owner.pid` names a process that no longer exists, and whose `logs/nginx.pid` names a
    /// live process started with that prefix (checked in `/proc/PID/cmdline`, so a recycled PID is left alone), is an
    /// orphan: its process group gets `SIGKILL`. The directory of a dead owner is then removed, whether or not its
    /// nginx was still running.
    private static func reapOrphanedNginx() {
        #if os(Linux)
        let base = NSTemporaryDirectory()
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for entry in entries where entry.hasPrefix("liverelay-nginx-") {
            let prefix = (base.hasSuffix("/") ? base : base + "/") + entry
            guard let owner = Int32(readFile(prefix + "/owner.pid").trimmingCharacters(in: .whitespacesAndNewlines)),
                sendSignal(owner, 0) == false, errno == ESRCH
            else { continue }
            if let master = Int32(readFile(prefix + "/logs/nginx.pid").trimmingCharacters(in: .whitespacesAndNewlines)),
                readFile("/proc/\(master)/cmdline").replacingOccurrences(of: "\0", with: " ").contains("-p \(prefix) ")
            {
                _ = sendSignal(getpgid(master) == master ? -master : master, SIGKILL)
            }
            try? FileManager.default.removeItem(atPath: prefix)
        }
        #endif
    }
}

// MARK: - Configuration

extension NginxRTMP {
    /// The format of ``accessLogPath``: nginx-rtmp's log variables, separated by `|`.
    public static let accessLogFormat = "$command|$app|$name|$bytes_received|$bytes_sent|$session_time"

    struct Ports: Sendable, CustomStringConvertible {
        var rtmp: Int
        var stat: Int
        var tls: Int?

        init(tls: Bool) throws {
            let ports = try freeTCPPorts(count: tls ? 3 : 2)
            self.rtmp = ports[0]
            self.stat = ports[1]
            self.tls = tls ? ports[2] : nil
        }

        var all: [Int] { [self.rtmp, self.stat] + (self.tls.map { [$0] } ?? []) }

        var description: String {
            "127.0.0.1 ports rtmp \(self.rtmp), stat \(self.stat)" + (self.tls.map { ", tls \($0)" } ?? "")
        }
    }

    struct TLSFiles: Sendable {
        var certificate: String
        var key: String
    }

    struct Modules {
        var rtmp: String
        var stream: String?
    }

    /// The complete `nginx.conf`.
    static func configuration(
        prefix: String,
        applications: [String],
        ports: Ports,
        modules: Modules,
        tls: TLSFiles?
    ) -> String {
        var lines: [String] = [
            "# Written by PeerTestSupport.NginxRTMP for one test.",
            "load_module \(modules.rtmp);",
        ]
        if let stream = modules.stream, tls != nil {
            lines.append("load_module \(stream);")
        }
        lines += [
            "worker_processes 1;",
            "pid \(prefix)/logs/nginx.pid;",
            "error_log \(prefix)/logs/error.log info;",
            "",
            "events {",
            "    worker_connections 256;",
            "}",
            "",
            "rtmp {",
            "    log_format liverelay '\(accessLogFormat)';",
            "    access_log \(prefix)/logs/rtmp-access.log liverelay;",
            "",
            "    server {",
            "        listen 127.0.0.1:\(ports.rtmp);",
        ]
        for application in applications {
            lines += [
                "",
                "        application \(application) {",
                "            live on;",
                "            record all;",
                "            record_path \(prefix)/records/\(application);",
                "            record_unique off;",
                "        }",
            ]
        }
        lines += [
            "    }",
            "}",
            "",
            "http {",
            "    access_log off;",
            "    client_body_temp_path \(prefix)/tmp/client_body;",
            "    proxy_temp_path \(prefix)/tmp/proxy;",
            "    fastcgi_temp_path \(prefix)/tmp/fastcgi;",
            "    uwsgi_temp_path \(prefix)/tmp/uwsgi;",
            "    scgi_temp_path \(prefix)/tmp/scgi;",
            "",
            "    server {",
            "        listen 127.0.0.1:\(ports.stat);",
            "        location /stat {",
            "            rtmp_stat all;",
            "        }",
            "    }",
            "}",
        ]
        if let tls, let tlsPort = ports.tls {
            lines += [
                "",
                "stream {",
                "    server {",
                "        listen 127.0.0.1:\(tlsPort) ssl;",
                "        ssl_certificate \(tls.certificate);",
                "        ssl_certificate_key \(tls.key);",
                "        proxy_pass 127.0.0.1:\(ports.rtmp);",
                "    }",
                "}",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

// MARK: - Files

/// Letters, digits, `-` and `_`: safe in nginx.conf, a URL path and a file name.
func isSafeName(_ name: String) -> Bool {
    !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
}

func nginxDiagnostics(prefix: String, maxBytes: Int) -> String {
    var text = "error log (\(prefix)/logs/error.log):\n" + readFileTail(prefix + "/logs/error.log", maxBytes: maxBytes)
    let standardError = readFileTail(prefix + "/logs/nginx.stderr", maxBytes: maxBytes)
    if !standardError.isEmpty {
        text += "\nstandard error:\n" + standardError
    }
    return text
}

private func makeDirectory(_ path: String, mode: mode_t) throws {
    guard mkdir(path, mode) == 0 || errno == EEXIST else {
        throw PeerError.startFailed("mkdir \(path) failed: \(errnoDescription())")
    }
    // mkdir's mode is filtered through the umask.
    chmod(path, mode)
}

func writeFile(_ path: String, _ contents: String) throws {
    do {
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
        throw PeerError.startFailed("cannot write \(path): \(error)")
    }
}

/// The file's contents from byte `offset` on, or "" when it cannot be read.
func readFile(_ path: String, from offset: Int = 0) -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
    defer { try? handle.close() }
    guard (try? handle.seek(toOffset: UInt64(offset))) != nil, let data = try? handle.readToEnd() else { return "" }
    return String(decoding: data, as: UTF8.self)
}

func readFileTail(_ path: String, maxBytes: Int) -> String {
    let size = fileSize(path)
    let start = max(size - maxBytes, 0)
    let text = readFile(path, from: start)
    return start > 0 ? "[…]" + text : text
}

func fileSize(_ path: String) -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else { return 0 }
    return Int(info.st_size)
}
