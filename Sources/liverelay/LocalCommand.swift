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

import ArgumentParser
import Console
import Foundation
import Gateway
import LiveStreamModel
import LocalRuntime
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals
import WebRTC

/// `liverelay local -f streams.yaml`: the whole system on one machine, no cluster.
struct LocalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "Run the LiveStreams of a YAML file on this machine: a port each, relays started on demand.",
        discussion: """
            The file holds LiveStream documents and the Secrets they reference, exactly as you would apply them to a \
            cluster. Each stream gets a port from --port-range; the gateway listens there and starts the stream's \
            relay on the first connection, holding the encoder until the relay is ready, and stops it after the \
            stream's spec.scaling.idleSeconds without one. A stream key Secret that is missing is generated, \
            printed once and kept under --state-dir. The file is reloaded when it changes. Ctrl-C stops everything.
            """
    )

    @Option(name: [.customShort("f"), .customLong("file")], help: "The YAML file of LiveStreams and Secrets.")
    var file: String

    @Option(help: "Address the stream ports listen on.")
    var listenHost: String = "0.0.0.0"

    @Option(help: "Host name or address in the printed ingest URLs.")
    var advertiseHost: String = "127.0.0.1"

    @Option(
        help: ArgumentHelp(
            "A port that takes every stream with a key, as rtmp://HOST:PORT/APP/KEY (1935, say); none by default.",
            discussion: "Each stream keeps its own port as well. A stream authorized by webhook has no key to route by."
        )
    )
    var sharedPort: Int?

    @OptionGroup(title: "WebRTC ingest (WHIP)")
    var whip: WHIPOptions

    @OptionGroup(title: "rtmps://")
    var tls: IngestTLSOptions

    @Option(help: "Ports handed to streams, LOW-HIGH.")
    var portRange: String = "31000-31999"

    @Option(help: "HTTP address of the gateway's /metrics, /keda/streams/NS/NAME, /api/v1/routes, or 'none'.")
    var httpListen: String = "127.0.0.1:8090"

    @Option(help: "Where generated keys and relay configurations are kept (default: $XDG_STATE_HOME/liverelay).")
    var stateDir: String?

    @Option(help: "The liverelay executable to start relays with (default: this one).")
    var relayExecutable: String?

    @Option(help: "Log level of the relays.")
    var relayLogLevel: Logger.Level = .notice

    @Option(help: "Seconds a connection is held while its relay starts, before it is refused.")
    var holdTimeout: Double = 30

    @Option(help: "Connections held at once for one stream.")
    var maxHeldPerStream: Int = 16

    @Option(
        help: ArgumentHelp(
            "The password of the console's first admin, 'admin', made when the state directory has no console user.",
            discussion: "Without it a password is generated and printed once. Later: liverelay console users passwd."
        )
    )
    var consoleAdminPassword: String?

    @Flag(help: "Mark the console's session cookie Secure (browsers reach --http-listen through HTTPS).")
    var consoleSecureCookies = false

    @Option(
        help: ArgumentHelp(
            "A header in which an authenticating proxy in front (oauth2-proxy, say) names the console user.",
            discussion: "Taken only from --console-trusted-proxy-from; the named user is signed in without a password."
        )
    )
    var consoleTrustedProxyHeader: String?

    @Option(help: "Comma-separated CIDR blocks the trusted proxy connects from.")
    var consoleTrustedProxyFrom: String = "127.0.0.0/8,::1/128"

    @OptionGroup(title: "Logging")
    var log: LogOptions

    func validate() throws {
        if self.consoleTrustedProxyHeader != nil {
            _ = try self.trustedProxy()
        }
        do {
            _ = try PortRange(parsing: self.portRange)
        } catch {
            throw ValidationError("--port-range: \(error.message)")
        }
        if let port = self.sharedPort, !(1...65535).contains(port) {
            throw ValidationError("--shared-port must be a TCP port (1-65535), got \(port).")
        }
        if let port = self.sharedPort, let range = try? PortRange(parsing: self.portRange), range.contains(port) {
            throw ValidationError(
                "--shared-port \(port) is inside --port-range \(self.portRange), which is for the streams' own ports."
            )
        }
        guard self.holdTimeout > 0, self.maxHeldPerStream >= 0 else {
            throw ValidationError("--hold-timeout must be above 0 and --max-held-per-stream at least 0.")
        }
    }

    func run() async throws {
        self.log.bootstrap(defaultLevel: .notice)
        let logger = Logger(label: "liverelay.local")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let configuration = LocalConfiguration(
            streamsFile: self.file,
            portRange: try PortRange(parsing: self.portRange),
            advertisedHost: self.advertiseHost,
            gateway: GatewayConfiguration(
                host: self.listenHost,
                maxHeldPerStream: self.maxHeldPerStream,
                holdTimeout: .milliseconds(Int64(self.holdTimeout * 1000)),
                sharedIngestPort: self.sharedPort,
                tls: self.tls.configuration
            ),
            relayExecutable: self.relayExecutable ?? Self.currentExecutable(),
            relayArguments: ["--log-level", self.relayLogLevel.rawValue],
            stateDirectory: self.stateDir ?? Self.defaultStateDirectory()
        )
        // A file that cannot be used is the user's first problem: say so plainly, before anything listens.
        do {
            _ = try StreamFile.load(path: self.file)
        } catch {
            throw ValidationError("\(error)")
        }
        let runtime: LocalRuntime
        do {
            runtime = try LocalRuntime(configuration: configuration, logger: logger)
        } catch let error as GatewayError where error.code == .invalidCertificate {
            throw ValidationError("cannot use the certificate for rtmps://: \(error.message)")
        }
        let printer = EventPrinter(runtime: runtime)

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var consoleServer: ConsoleServer?
        var whipService: WHIPService?
        if self.httpListen != "none" {
            let (host, port) = try RelayCommand.hostAndPort(self.httpListen, flag: "--http-listen")
            let users = LocalUserStore(stateDirectory: configuration.stateDirectory)
            if let admin = try await users.ensureFirstAdmin(password: self.consoleAdminPassword) {
                var line = "liverelay local: console user \(admin.name) created (admin; \(users.path))"
                if let password = admin.generatedPassword {
                    // The one place the password is shown: the terminal of the person who runs local mode.
                    line += "\n    password (shown once): \(password)"
                }
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
            let advertised = self.advertiseHost
            let whip = try await self.whip.makeService(
                gateway: runtime.gateway,
                listenHost: self.listenHost,
                announce: [advertised],
                logger: logger
            )
            whipService = whip
            // The go-live page is served with WHIP on this listener, the console's own.
            let server = ConsoleServer(
                configuration: .init(
                    secureCookies: self.consoleSecureCookies,
                    trustedProxy: try self.trustedProxy(),
                    goLiveBase: whip != nil ? "" : nil
                ),
                users: users,
                streams: LocalConsoleStreamStore(runtime: runtime),
                logger: Logger(label: "liverelay.console")
            )
            consoleServer = server
            services.append(
                .init(
                    service: makeGatewayHTTPApplication(
                        gateway: runtime.gateway,
                        registry: registry,
                        host: host,
                        port: port,
                        logger: Logger(label: "liverelay.http"),
                        whip: whip,
                        routes: {
                            runtime.addPreviewRoutes(to: $0)
                            server.addRoutes(to: $0)
                        },
                        onServerRunning: { bound in
                            await runtime.httpListening(host: host, port: bound, whip: whip != nil)
                            let wildcard = host.isEmpty || host == "0.0.0.0" || host == "::"
                            let shown = wildcard ? advertised : host
                            let url = "http://\(shown.contains(":") ? "[\(shown)]" : shown):\(bound)/"
                            FileHandle.standardOutput.write(Data("liverelay local: console \(url)\n".utf8))
                        }
                    )
                )
            )
        }
        services.append(.init(service: printer))
        if let consoleServer {
            services.append(.init(service: consoleServer))
        }
        services.append(.init(service: runtime))
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        do {
            try await group.run()
        } catch {
            await whipService?.transport.close()
            throw error
        }
        await whipService?.transport.close()
    }

    /// The console's trusted proxy, from `--console-trusted-proxy-header` and `--console-trusted-proxy-from`.
    func trustedProxy() throws -> ConsoleServer.TrustedProxy? {
        try ConsoleCommand.trustedProxy(
            header: self.consoleTrustedProxyHeader,
            from: self.consoleTrustedProxyFrom,
            flags: "--console-trusted-proxy"
        )
    }

    static func currentExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static func defaultStateDirectory() -> String {
        let environment = ProcessInfo.processInfo.environment
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty {
            return state + "/liverelay"
        }
        return (environment["HOME"] ?? NSTemporaryDirectory()) + "/.local/state/liverelay"
    }
}

/// Prints what local mode does, one line per event, to standard output; a generated key is printed here, once.
private struct EventPrinter: Service {
    let runtime: LocalRuntime

    func run() async throws {
        let events = self.runtime.events()
        await cancelWhenGracefulShutdown {
            for await event in events {
                self.print(event)
            }
        }
        // In a shutdown the runtime stops first (services stop in reverse order) and its events end then, before
        // the group asks the console to stop; a console that returned now would count as a service that finished
        // unexpectedly, and Ctrl-C would end local mode with an error.
        try? await gracefulShutdown()
    }

    private func print(_ event: LocalEvent) {
        var line = "liverelay local: \(event)"
        if case .keyGenerated(_, _, let path) = event,
            let key = (try? String(contentsOfFile: path, encoding: .utf8)).map(StreamKey.normalized)
        {
            // The one place a key is shown: the terminal of the person who runs local mode, when it is made.
            line += "\n    stream key (shown once): \(key)"
        }
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
