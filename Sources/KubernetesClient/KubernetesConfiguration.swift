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

public import Foundation
import Yams

/// Where the API server is and how to authenticate to it.
///
/// Built from the in-cluster service account (``inCluster(serviceAccountDirectory:environment:)``), from a kubeconfig
/// (``kubeconfig(path:context:environment:)``), or by hand in tests.
public struct KubernetesConfiguration: Sendable {
    /// `https://host:port` (or `http://` for a test server without TLS).
    public var server: String
    /// The namespace to use when a call does not name one.
    public var namespace: String
    /// PEM bytes of the certificate authorities to trust instead of the system's.
    public var certificateAuthorityPEM: [UInt8]?
    /// PEM bytes of a client certificate chain and its key, for mutual TLS.
    public var clientCertificate: ClientCertificate?
    public var credentials: Credentials
    public var insecureSkipTLSVerify: Bool
    public var retry: RetryPolicy
    /// The longest single non-watch request.
    public var requestTimeout: Duration
    public var connectTimeout: Duration

    public struct ClientCertificate: Sendable {
        public var certificatePEM: [UInt8]
        public var keyPEM: [UInt8]

        public init(certificatePEM: [UInt8], keyPEM: [UInt8]) {
            self.certificatePEM = certificatePEM
            self.keyPEM = keyPEM
        }
    }

    /// How a bearer token is obtained.
    public enum Credentials: Sendable {
        case none
        case token(String)
        /// A token re-read from the file at most once a minute and after a 401, because the kubelet rotates
        /// projected service account tokens in place.
        case tokenFile(String)
        /// A client-go exec credential plugin, run again when its credential expires or after a 401.
        case exec(ExecCredentialPlugin)
    }

    /// `users[].user.exec` of a kubeconfig.
    public struct ExecCredentialPlugin: Sendable, Hashable {
        public var command: String
        public var arguments: [String]
        public var environment: [String: String]
        public var apiVersion: String
        /// The directory relative commands are resolved against (the kubeconfig's).
        public var workingDirectory: String?

        public init(
            command: String,
            arguments: [String] = [],
            environment: [String: String] = [:],
            apiVersion: String = "client.authentication.k8s.io/v1",
            workingDirectory: String? = nil
        ) {
            self.command = command
            self.arguments = arguments
            self.environment = environment
            self.apiVersion = apiVersion
            self.workingDirectory = workingDirectory
        }
    }

    /// Retries of idempotent requests answered with 429 or 5xx.
    public struct RetryPolicy: Sendable {
        /// Attempts in total, the first included.
        public var maxAttempts: Int
        /// The delay when the server sends no `Retry-After`.
        public var defaultDelay: Duration
        /// A `Retry-After` larger than this is cut down to it, so one bad header cannot stall a controller.
        public var maxDelay: Duration

        public init(
            maxAttempts: Int = 4,
            defaultDelay: Duration = .milliseconds(200),
            maxDelay: Duration = .seconds(10)
        ) {
            self.maxAttempts = maxAttempts
            self.defaultDelay = defaultDelay
            self.maxDelay = maxDelay
        }
    }

    public init(
        server: String,
        namespace: String = "default",
        certificateAuthorityPEM: [UInt8]? = nil,
        clientCertificate: ClientCertificate? = nil,
        credentials: Credentials = .none,
        insecureSkipTLSVerify: Bool = false,
        retry: RetryPolicy = RetryPolicy(),
        requestTimeout: Duration = .seconds(30),
        connectTimeout: Duration = .seconds(10)
    ) {
        self.server = server
        self.namespace = namespace
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.clientCertificate = clientCertificate
        self.credentials = credentials
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.retry = retry
        self.requestTimeout = requestTimeout
        self.connectTimeout = connectTimeout
    }

    public static let defaultServiceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The configuration of a pod: `KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted service account's `token`,
    /// `ca.crt` and `namespace`.
    public static func inCluster(
        serviceAccountDirectory: String = defaultServiceAccountDirectory,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> KubernetesConfiguration {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
            let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
        else {
            throw KubernetesError.configuration("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
        }
        let tokenPath = "\(serviceAccountDirectory)/token"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw KubernetesError.configuration("no service account token at \(tokenPath)")
        }
        let ca = FileManager.default.contents(atPath: "\(serviceAccountDirectory)/ca.crt").map { Array($0) }
        let namespace =
            FileManager.default.contents(atPath: "\(serviceAccountDirectory)/namespace")
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        // An IPv6 service address must be bracketed in a URL.
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return KubernetesConfiguration(
            server: "https://\(hostPart):\(port)",
            namespace: namespace.flatMap { $0.isEmpty ? nil : $0 } ?? "default",
            certificateAuthorityPEM: ca,
            credentials: .tokenFile(tokenPath)
        )
    }

    /// The configuration of a kubeconfig's context: the first file of `KUBECONFIG`, else `~/.kube/config`.
    public static func kubeconfig(
        path: String? = nil,
        context: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> KubernetesConfiguration {
        let resolvedPath: String
        if let path {
            resolvedPath = path
        } else if let list = environment["KUBECONFIG"], let first = list.split(separator: ":").first {
            resolvedPath = String(first)
        } else {
            let home = environment["HOME"] ?? NSHomeDirectory()
            resolvedPath = "\(home)/.kube/config"
        }
        guard let data = FileManager.default.contents(atPath: resolvedPath) else {
            throw KubernetesError.configuration("cannot read kubeconfig \(resolvedPath)")
        }
        let directory = (resolvedPath as NSString).deletingLastPathComponent
        return try Self.kubeconfig(
            yaml: String(decoding: data, as: UTF8.self),
            context: context,
            baseDirectory: directory
        )
    }

    /// Parses kubeconfig YAML; relative file paths in it are resolved against `baseDirectory`.
    public static func kubeconfig(
        yaml: String,
        context: String? = nil,
        baseDirectory: String
    ) throws -> KubernetesConfiguration {
        let config: Kubeconfig
        do {
            // Yams' decoder is a non-Sendable class: a fresh one per call, never stored.
            config = try YAMLDecoder().decode(Kubeconfig.self, from: yaml)
        } catch {
            throw KubernetesError.configuration("invalid kubeconfig", cause: error)
        }
        guard let contextName = context ?? config.currentContext else {
            throw KubernetesError.configuration("kubeconfig has no current-context")
        }
        guard let namedContext = config.contexts?.first(where: { $0.name == contextName })?.context else {
            throw KubernetesError.configuration("kubeconfig has no context \(contextName)")
        }
        guard let cluster = config.clusters?.first(where: { $0.name == namedContext.cluster })?.cluster else {
            throw KubernetesError.configuration("kubeconfig has no cluster \(namedContext.cluster)")
        }
        let user = namedContext.user.flatMap { name in config.users?.first(where: { $0.name == name })?.user }

        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : "\(baseDirectory)/\(path)"
        }
        func bytes(data: String?, file: String?, what: String) throws -> [UInt8]? {
            if let data {
                guard let decoded = Data(base64Encoded: data, options: .ignoreUnknownCharacters) else {
                    throw KubernetesError.configuration("\(what)-data is not base64")
                }
                return Array(decoded)
            }
            if let file {
                guard let contents = FileManager.default.contents(atPath: resolve(file)) else {
                    throw KubernetesError.configuration("cannot read \(what) \(resolve(file))")
                }
                return Array(contents)
            }
            return nil
        }

        var configuration = KubernetesConfiguration(
            server: cluster.server,
            namespace: namedContext.namespace ?? "default",
            certificateAuthorityPEM: try bytes(
                data: cluster.certificateAuthorityData,
                file: cluster.certificateAuthority,
                what: "certificate-authority"
            ),
            insecureSkipTLSVerify: cluster.insecureSkipTLSVerify ?? false
        )
        guard let user else { return configuration }
        if let certificate = try bytes(
            data: user.clientCertificateData,
            file: user.clientCertificate,
            what: "client-certificate"
        ) {
            guard let key = try bytes(data: user.clientKeyData, file: user.clientKey, what: "client-key") else {
                throw KubernetesError.configuration("client-certificate without client-key")
            }
            configuration.clientCertificate = ClientCertificate(certificatePEM: certificate, keyPEM: key)
        }
        if let token = user.token {
            configuration.credentials = .token(token)
        } else if let tokenFile = user.tokenFile {
            configuration.credentials = .tokenFile(resolve(tokenFile))
        } else if let exec = user.exec {
            var environment: [String: String] = [:]
            for variable in exec.env ?? [] {
                environment[variable.name] = variable.value
            }
            // client-go resolves a command with a path separator against the kubeconfig's directory.
            let command = exec.command.contains("/") ? resolve(exec.command) : exec.command
            configuration.credentials = .exec(
                ExecCredentialPlugin(
                    command: command,
                    arguments: exec.args ?? [],
                    environment: environment,
                    apiVersion: exec.apiVersion ?? "client.authentication.k8s.io/v1",
                    workingDirectory: baseDirectory
                )
            )
        }
        return configuration
    }

    /// In-cluster when running in a pod (`KUBERNETES_SERVICE_HOST` set and a token mounted), else the kubeconfig.
    public static func automatic(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> KubernetesConfiguration {
        if environment["KUBERNETES_SERVICE_HOST"] != nil,
            FileManager.default.fileExists(atPath: "\(defaultServiceAccountDirectory)/token")
        {
            return try Self.inCluster(environment: environment)
        }
        return try Self.kubeconfig(environment: environment)
    }
}

/// The parts of the kubeconfig format (`clientcmd/api/v1.Config`) the client understands.
struct Kubeconfig: Decodable {
    var currentContext: String?
    var clusters: [NamedCluster]?
    var contexts: [NamedContext]?
    var users: [NamedUser]?

    enum CodingKeys: String, CodingKey {
        case currentContext = "current-context"
        case clusters, contexts, users
    }

    struct NamedCluster: Decodable {
        var name: String
        var cluster: Cluster
    }

    struct Cluster: Decodable {
        var server: String
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?

        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
        }
    }

    struct NamedContext: Decodable {
        var name: String
        var context: Context
    }

    struct Context: Decodable {
        var cluster: String
        var user: String?
        var namespace: String?
    }

    struct NamedUser: Decodable {
        var name: String
        var user: User
    }

    struct User: Decodable {
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        var token: String?
        var tokenFile: String?
        var exec: Exec?

        enum CodingKeys: String, CodingKey {
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case token, tokenFile, exec
        }
    }

    struct Exec: Decodable {
        var command: String
        var args: [String]?
        var env: [EnvVar]?
        var apiVersion: String?
    }

    struct EnvVar: Decodable {
        var name: String
        var value: String
    }
}
