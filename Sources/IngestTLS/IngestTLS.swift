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

public import CoreMetrics
import Foundation
public import Logging
public import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

// RTMPS ingest: an encoder that publishes to `rtmps://HOST:PORT/APP/KEY` sends its stream key inside TLS instead of in
// the clear. The server (the gateway, or a relay that encoders reach directly) terminates TLS; what follows the TLS
// server in the pipeline sees plain RTMP, as from an `rtmp://` encoder.
//
// Both schemes share every port. An RTMP client's first byte is its version (3); a TLS client's is the record type of
// its ClientHello (22, "handshake"). ``TLSSniffer`` looks at that byte and puts a TLS server in front of the
// connection when it is 22, so a stream needs no second port and no setting of its own: with a certificate
// configured, every port takes `rtmps://` as well as `rtmp://`.

/// The certificate a server offers to encoders that publish with `rtmps://`.
public struct IngestTLSConfiguration: Sendable, Hashable {
    /// PEM file with the certificate and its chain, leaf first (`tls.crt` of a Kubernetes TLS Secret).
    public var certificateChainFile: String
    /// PEM file with the certificate's private key (`tls.key`).
    public var privateKeyFile: String
    /// How often the server reads the two files again. A changed certificate (a renewal by cert-manager, a Secret
    /// volume updated by the kubelet) is used for every connection from then on; connections already up keep theirs.
    public var reloadInterval: Duration

    public init(certificateChainFile: String, privateKeyFile: String, reloadInterval: Duration = .seconds(30)) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.reloadInterval = reloadInterval
    }
}

/// A certificate or key that cannot be read or used, with what is wrong.
public struct IngestTLSError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { self.message }
}

/// What a look at the certificate's files found when they had changed.
public enum IngestTLSReload: Hashable, Sendable {
    /// The new certificate is in use: its subject and expiry, for the log.
    case reloaded(String)
    /// The new files cannot be used, for this reason; the certificate in use stays.
    case failed(String)
}

/// A server's certificate for `rtmps://`: loaded at start (one that cannot be used throws, with the reason, so the
/// server does not start), then read again every ``IngestTLSConfiguration/reloadInterval`` by ``keepCurrent(logger:onReload:)``.
/// A new certificate that cannot be used is logged and the one in use is kept, so a bad renewal never takes
/// `rtmps://` down.
public final class IngestCertificate: Sendable {
    /// The two files' bytes: what a change is detected on.
    private struct Files: Equatable {
        var certificate: [UInt8]
        var key: [UInt8]
    }

    private struct Loaded {
        var context: NIOSSLContext
        var files: Files
        var summary: String
        var notValidAfter: Int
    }

    public let configuration: IngestTLSConfiguration
    private let loaded: Mutex<Loaded>
    private let expiry: Gauge

    /// Loads the certificate.
    ///
    /// - Parameters:
    ///   - expiryMetric: the gauge that holds when the certificate in use expires, in seconds since 1970.
    /// - Throws: ``IngestTLSError`` saying which file cannot be read or used, and why.
    public init(
        configuration: IngestTLSConfiguration,
        expiryMetric: String,
        metricsFactory: any MetricsFactory
    ) throws {
        // Here rather than in each server's configuration: every user of the certificate runs its reload loop.
        guard configuration.reloadInterval > .zero else {
            throw IngestTLSError("the TLS reload interval must be positive")
        }
        self.configuration = configuration
        let loaded = try Self.load(configuration, files: try Self.read(configuration))
        self.loaded = Mutex(loaded)
        self.expiry = Gauge(label: expiryMetric, factory: metricsFactory)
        self.expiry.record(loaded.notValidAfter)
    }

    /// The TLS context for a new connection.
    var context: NIOSSLContext { self.loaded.withLock { $0.context } }

    /// The certificate in use, for the log: subject, expiry.
    public var summary: String { self.loaded.withLock { $0.summary } }

    /// Looks at the files every reload interval until the task is cancelled, logs what it finds when they changed,
    /// and passes it to `onReload`.
    public func keepCurrent(logger: Logger, onReload: @Sendable (IngestTLSReload) -> Void = { _ in }) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: self.configuration.reloadInterval)
            } catch {
                return
            }
            guard let reload = self.reloadIfChanged() else {
                continue
            }
            switch reload {
            case .reloaded(let summary):
                logger.notice("New TLS certificate in use", metadata: ["tls.certificate": "\(summary)"])
            case .failed(let reason):
                logger.error(
                    "Cannot use the changed TLS certificate; keeping the one in use",
                    metadata: ["error": "\(reason)", "tls.certificate": "\(self.summary)"]
                )
            }
            onReload(reload)
        }
    }

    /// Reads the files again and, if they changed, uses the certificate they now hold; `nil` if they did not change.
    func reloadIfChanged() -> IngestTLSReload? {
        let configuration = self.configuration
        let files: Files
        do {
            files = try Self.read(configuration)
        } catch {
            return .failed("\(error)")
        }
        guard files != self.loaded.withLock({ $0.files }) else {
            return nil
        }
        do {
            let new = try Self.load(configuration, files: files)
            self.loaded.withLock { $0 = new }
            self.expiry.record(new.notValidAfter)
            return .reloaded(new.summary)
        } catch {
            // Remember what failed, so that the same broken files are reported once, not at every look.
            self.loaded.withLock { $0.files = files }
            return .failed("\(error)")
        }
    }

    private static func read(_ configuration: IngestTLSConfiguration) throws -> Files {
        Files(
            certificate: try Self.contents(of: configuration.certificateChainFile, what: "certificate"),
            key: try Self.contents(of: configuration.privateKeyFile, what: "private key")
        )
    }

    private static func contents(of path: String, what: String) throws -> [UInt8] {
        do {
            return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw IngestTLSError("cannot read the \(what) file \(path): \(error.localizedDescription)")
        }
    }

    private static func load(_ configuration: IngestTLSConfiguration, files: Files) throws -> Loaded {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(files.certificate)
        } catch {
            throw IngestTLSError(
                "\(configuration.certificateChainFile) holds no PEM certificate: \(error)"
            )
        }
        guard let leaf = chain.first else {
            throw IngestTLSError("\(configuration.certificateChainFile) holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: files.key, format: .pem)
        } catch {
            throw IngestTLSError(
                "\(configuration.privateKeyFile) holds no PEM private key: \(error)"
            )
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        tls.minimumTLSVersion = .tlsv12
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: tls)
        } catch {
            // BoringSSL refuses a key that does not belong to the certificate here.
            throw IngestTLSError(
                "the private key in \(configuration.privateKeyFile) does not go with the certificate in "
                    + "\(configuration.certificateChainFile): \(error)"
            )
        }
        let notValidAfter = Int(leaf.notValidAfter)
        let expires = Date(timeIntervalSince1970: TimeInterval(notValidAfter))
        return Loaded(
            context: context,
            files: files,
            summary: "\(leaf), \(chain.count) in chain, expires \(expires.formatted(.iso8601))",
            notValidAfter: notValidAfter
        )
    }
}

/// Why ``TLSSniffer`` refuses a connection; its description is the reason a server logs.
public enum TLSRefusal: Hashable, Sendable, CustomStringConvertible {
    /// A TLS client, and the server has no certificate; `hint` says how to give it one.
    case noCertificate(hint: String)
    /// The TLS handshake failed, with the TLS server's error.
    case handshakeFailed(error: String)

    public var description: String {
        switch self {
        case .noCertificate(let hint): "TLS client (rtmps://) but no certificate: \(hint)"
        case .handshakeFailed(let error): "TLS handshake failed: \(error)"
        }
    }
}

/// First on every connection of a server that takes `rtmps://`: looks at the client's first byte and, for a TLS
/// client, puts a TLS server with the certificate after itself; for anything else it just leaves. Either way the
/// first read goes on to what follows, and this handler is gone after it.
///
/// A TLS client when there is no certificate, and a TLS handshake that fails, close the connection after `refuse`
/// was called with the reason (the server logs and counts it as it does its other refusals).
public final class TLSSniffer: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    /// The TLS record type of a handshake message: the first byte of every ClientHello.
    static let tlsHandshakeRecord: UInt8 = 22

    private let certificate: IngestCertificate?
    private let refuse: (TLSRefusal) -> Void
    private let logger: Logger
    private let noCertificateHint: String

    /// - Parameters:
    ///   - certificate: the certificate for TLS clients, or `nil` to refuse them.
    ///   - refuse: called on the channel's event loop with why a connection is refused, just before it is closed.
    ///   - noCertificateHint: what the refusal of a TLS client without a certificate tells the user to do.
    public init(
        certificate: IngestCertificate?,
        logger: Logger,
        noCertificateHint: String,
        refuse: @escaping (TLSRefusal) -> Void
    ) {
        self.certificate = certificate
        self.logger = logger
        self.noCertificateHint = noCertificateHint
        self.refuse = refuse
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        // Each way, the read goes on before this handler leaves: a removed handler's context leads nowhere.
        guard buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == Self.tlsHandshakeRecord else {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        guard let certificate = self.certificate else {
            self.refuse(.noCertificate(hint: self.noCertificateHint))
            context.close(promise: nil)
            return
        }
        do {
            let pipeline = context.pipeline.syncOperations
            try pipeline.addHandler(TLSHandshakeWatch(refuse: self.refuse, logger: self.logger), position: .after(self))
            try pipeline.addHandler(NIOSSLServerHandler(context: certificate.context), position: .after(self))
        } catch {
            self.logger.error("Cannot set up TLS for the connection", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        // Into the TLS server just added: the ClientHello.
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension TLSSniffer: Sendable {}

/// Right after the TLS server until its handshake ends: a handshake that fails is refused like any other connection
/// the server turns away (logged with the reason, counted), instead of closing without a word.
final class TLSHandshakeWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let refuse: (TLSRefusal) -> Void
    private let logger: Logger
    private var failed = false

    init(refuse: @escaping (TLSRefusal) -> Void, logger: Logger) {
        self.refuse = refuse
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            self.logger.debug("TLS handshake completed")
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The TLS server may report more than one error for one failed handshake (the alert, then the close).
        guard !self.failed else {
            return
        }
        self.failed = true
        self.refuse(.handshakeFailed(error: "\(error)"))
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension TLSHandshakeWatch: Sendable {}
