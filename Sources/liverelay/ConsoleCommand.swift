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
import ConsoleCluster
import Foundation
import KubernetesClient
import LiveStreamModel
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `liverelay console`: the web console in a cluster, and its users (in a cluster or in local mode).
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "The web console: serve it in a cluster, and manage its users.",
        discussion: """
            In a cluster `liverelay console` (serve) runs the console against the Kubernetes API: the users in \
            one Secret (--users-secret NAMESPACE/NAME, bcrypt hashes), each user's streams the LiveStreams of the \
            user's namespace. In local mode the console is served at / of the --http-listen address of \
            `liverelay local`, which prints its URL; its users are kept in console-users.json in the state \
            directory. `liverelay console users ...` manages either: with --users-secret the cluster's, else \
            local mode's.
            """,
        subcommands: [Serve.self, Users.self],
        defaultSubcommand: Serve.self
    )

    /// `NAMESPACE/NAME` of the Secret of users.
    static func usersSecret(_ value: String) throws -> (namespace: String, name: String) {
        let parts = value.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw ValidationError("--users-secret must be NAMESPACE/NAME, not '\(value)'.")
        }
        return (parts[0], parts[1])
    }

    /// A trusted authenticating proxy from its flags (`FLAGS-header`, `FLAGS-from`): `nil` without a header.
    static func trustedProxy(header: String?, from: String, flags: String) throws -> ConsoleServer.TrustedProxy? {
        guard let header else {
            return nil
        }
        guard !header.isEmpty, header.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw ValidationError("\(flags)-header must be a header name, got \"\(header)\".")
        }
        var sources: [IPRange] = []
        for range in from.split(separator: ",") {
            do {
                sources.append(try IPRange(String(range.trimmingCharacters(in: .whitespaces))))
            } catch {
                throw ValidationError("\(flags)-from: \(error.reason) (\"\(range)\")")
            }
        }
        guard !sources.isEmpty else {
            throw ValidationError("\(flags)-from: give the addresses the proxy connects from.")
        }
        return ConsoleServer.TrustedProxy(header: header, sources: sources)
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the console in a cluster (the chart's console Deployment runs this)."
        )

        @OptionGroup var cluster: ClusterOptions

        @Option(help: "Serve the LiveStreams of this namespace only (default: every namespace).")
        var namespace: String?

        @Option(help: "NAMESPACE/NAME of the Secret that holds the console's users (key users.json).")
        var usersSecret: String

        @Option(help: "HOST:PORT of the console, with /healthz, /readyz and /metrics.")
        var httpListen = "0.0.0.0:8082"

        @Flag(help: "Mark the session cookie Secure (browsers reach the console through HTTPS).")
        var secureCookies = false

        @Option(
            help: ArgumentHelp(
                "A header in which an authenticating proxy in front (oauth2-proxy, say) names the console user.",
                discussion: "Taken only from --trusted-proxy-from; the named user is signed in without a password."
            )
        )
        var trustedProxyHeader: String?

        @Option(help: "Comma-separated CIDR blocks the trusted proxy connects from (with --trusted-proxy-header).")
        var trustedProxyFrom: String = ""

        @Option(
            help: ArgumentHelp(
                "The gateway's public HTTP base (https://gateway.example.org), where browsers reach WHIP.",
                discussion: "Each stream's card links its go-live page there; without it the link is left out."
            )
        )
        var gatewayPublicURL: String?

        @OptionGroup var log: LogOptions

        func validate() throws {
            _ = try ConsoleCommand.usersSecret(self.usersSecret)
            if let url = self.gatewayPublicURL, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
                throw ValidationError("--gateway-public-url must be an http:// or https:// URL.")
            }
            _ = try RelayCommand.hostAndPort(self.httpListen, flag: "--http-listen")
            _ = try self.trustedProxy()
        }

        func trustedProxy() throws -> ConsoleServer.TrustedProxy? {
            try ConsoleCommand.trustedProxy(
                header: self.trustedProxyHeader,
                from: self.trustedProxyFrom,
                flags: "--trusted-proxy"
            )
        }

        func run() async throws {
            self.log.bootstrap()
            let logger = Logger(label: "liverelay.console")
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            let users = try ConsoleCommand.usersSecret(self.usersSecret)
            let (host, port) = try RelayCommand.hostAndPort(self.httpListen, flag: "--http-listen")
            let kubernetes = try self.cluster.kubernetesConfiguration()
            try await withKubernetesClient(configuration: kubernetes, logger: logger) { client in
                let console = ClusterConsole(
                    client: client,
                    configuration: .init(
                        streamNamespace: self.namespace,
                        usersNamespace: users.namespace,
                        usersSecret: users.name,
                        server: .init(
                            secureCookies: self.secureCookies,
                            trustedProxy: try self.trustedProxy(),
                            goLiveBase: self.gatewayPublicURL
                        )
                    ),
                    logger: logger
                )
                let http = console.httpApplication(
                    registry: registry,
                    host: host,
                    port: port,
                    logger: Logger(label: "liverelay.http"),
                    onServerRunning: { bound in
                        logger.info("console listening", metadata: ["liverelay.http-listen": "\(host):\(bound)"])
                    }
                )
                // HTTP first so it stops last: probes and a last scrape still answer while the console stops.
                let services: [ServiceGroupConfiguration.ServiceConfiguration] =
                    [.init(service: http)] + console.services.map { .init(service: $0) }
                let group = ServiceGroup(
                    configuration: .init(
                        services: services,
                        gracefulShutdownSignals: [.sigterm, .sigint],
                        logger: logger
                    )
                )
                logger.info(
                    "console starting",
                    metadata: [
                        "k8s.namespace": "\(self.namespace ?? "all")",
                        "console.users-secret": "\(self.usersSecret)",
                    ]
                )
                try await group.run()
            }
        }
    }

    /// Where the users are: the cluster's Secret with --users-secret, else local mode's state directory.
    struct StateOptions: ParsableArguments {
        @Option(help: "Local mode's state directory (default: $XDG_STATE_HOME/liverelay).")
        var stateDir: String?

        @Option(help: "NAMESPACE/NAME of the console's Secret of users in a cluster (instead of local mode's).")
        var usersSecret: String?

        @OptionGroup var cluster: ClusterOptions

        func validate() throws {
            if let secret = self.usersSecret {
                _ = try ConsoleCommand.usersSecret(secret)
                if self.stateDir != nil {
                    throw ValidationError("--state-dir is local mode's, --users-secret a cluster's: give one.")
                }
            }
        }

        /// Runs `body` with the store of users this command changes.
        func withStore<Result>(_ body: (any ConsoleUserStore) async throws -> Result) async throws -> Result {
            guard let secret = self.usersSecret else {
                return try await body(
                    LocalUserStore(stateDirectory: self.stateDir ?? LocalCommand.defaultStateDirectory())
                )
            }
            let (namespace, name) = try ConsoleCommand.usersSecret(secret)
            return try await withKubernetesClient(configuration: try self.cluster.kubernetesConfiguration()) { client in
                try await body(
                    ClusterConsoleUserStore(
                        store: KubernetesUserStore(client: client, namespace: namespace, secretName: name)
                    )
                )
            }
        }
    }

    struct PasswordOptions: ParsableArguments {
        @Flag(help: "Read the password from the first line of standard input instead of generating one.")
        var passwordStdin = false

        /// The password to set, and whether it was generated (and so is printed once).
        func password() throws -> (String, generated: Bool) {
            guard self.passwordStdin else {
                return (ConsoleUser.generatePassword(), true)
            }
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw ValidationError("--password-stdin: standard input has no password on its first line.")
            }
            guard line.utf8.count <= 72 else {
                throw ValidationError("--password-stdin: bcrypt takes at most 72 bytes of a password.")
            }
            return (line, false)
        }
    }

    struct Users: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "users",
            abstract: "Add, remove and list console users, and set their passwords.",
            subcommands: [Add.self, Remove.self, Passwd.self, List.self]
        )
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user; prints a generated password once unless --password-stdin gives one."
        )

        @Argument(help: "The user name (lowercase letters, digits and '-').")
        var name: String

        @Option(help: "The namespace whose streams are the user's (default: the user name).")
        var namespace: String?

        @Flag(help: "An admin sees and changes every stream.")
        var admin = false

        @OptionGroup var state: StateOptions
        @OptionGroup var passwordOptions: PasswordOptions

        func validate() throws {
            if let problem = ConsoleUser.nameProblem(self.name) {
                throw ValidationError("user name \(problem)")
            }
            if let problem = ConsoleUser.nameProblem(self.namespace ?? self.name) {
                throw ValidationError("--namespace \(problem)")
            }
        }

        func run() async throws {
            let (password, generated) = try self.passwordOptions.password()
            let user = ConsoleUser(
                name: self.name,
                passwordHash: ConsoleUser.hash(password: password),
                admin: self.admin,
                namespace: self.namespace ?? self.name
            )
            do {
                try await self.state.withStore { try await $0.add(user) }
            } catch let error as ConsoleStoreError {
                throw ValidationError(error.description)
            }
            print("user \(user.name) added (namespace \(user.namespace)\(user.admin ? ", admin" : ""))")
            if generated {
                print("password (shown once): \(password)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user; their sessions end.")

        @Argument(help: "The user name.")
        var name: String

        @OptionGroup var state: StateOptions

        func run() async throws {
            do {
                try await self.state.withStore { try await $0.remove(named: self.name) }
            } catch let error as ConsoleStoreError {
                throw ValidationError(error.description)
            }
            print("user \(self.name) removed")
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a user's password; prints a generated one once unless --password-stdin gives one."
        )

        @Argument(help: "The user name.")
        var name: String

        @OptionGroup var state: StateOptions
        @OptionGroup var passwordOptions: PasswordOptions

        func run() async throws {
            let (password, generated) = try self.passwordOptions.password()
            do {
                try await self.state.withStore { try await $0.setPassword(name: self.name, password: password) }
            } catch let error as ConsoleStoreError {
                throw ValidationError(error.description)
            }
            print("password of \(self.name) changed")
            if generated {
                print("password (shown once): \(password)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the users (never their password hashes).")

        @OptionGroup var state: StateOptions

        func run() async throws {
            for user in try await self.state.withStore({ try await $0.users() }) {
                print("\(user.name)\tnamespace \(user.namespace)\(user.admin ? "\tadmin" : "")")
            }
        }
    }
}
