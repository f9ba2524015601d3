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

import CoreMetrics
import Foundation
import LiveStreamModel
import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

// RTMPS ingest: an encoder that publishes to `rtmps://GATEWAY:PORT/APP/KEY` sends its stream key inside TLS instead
// of in the clear. The gateway terminates TLS and proxies plain RTMP to the relay, as it proxies an `rtmp://`
// connection; the relay never sees the difference.
//
// Both schemes share every port. An RTMP client's first byte is its version (3); a TLS client's is the record type of
// its ClientHello (22, "handshake"). The gateway looks at that byte and puts a TLS server in front of the connection
// when it is 22, so a stream needs no second port and no setting of its own: with a certificate configured, every
// stream takes `rtmps://` as well as `rtmp://`.

/// The certificate the gateway offers to encoders that publish with `rtmps://`.
public struct GatewayTLSConfiguration: Sendable, Hashable {
    /// PEM file with the certificate and its chain, leaf first (`tls.crt` of a Kubernetes TLS Secret).
    public var certificateChainFile: String
    /// PEM file with the certificate's private key (`tls.key`).
    public var privateKeyFile: String
    /// How often the gateway reads the two files again. A changed certificate (a renewal by cert-manager, a Secret
    /// volume updated by the kubelet) is used for every connection from then on; connections already up keep theirs.
    public var reloadInterval: Duration

    public init(certificateChainFile: String, privateKeyFile: String, reloadInterval: Duration = .seconds(30)) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.reloadInterval = reloadInterval
    }
}

/// What a look at the certificate's files found when they had changed.
public enum GatewayTLSReload: Hashable, Sendable {
    /// The new certificate is in use: its subject and expiry, for the log.
    case reloaded(String)
    /// The new files cannot be used, for this reason; the certificate in use stays.
    case failed(String)
}

/// The gateway's certificate: loaded at start (a certificate that cannot be used stops the gateway from starting,
/// with the reason), then read again every ``GatewayTLSConfiguration/reloadInterval``. A new certificate that cannot
/// be used is logged and the one in use is kept, so a bad renewal never takes `rtmps://` down.
final class GatewayCertificate: Sendable {
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

    let configuration: GatewayTLSConfiguration
    private let loaded: Mutex<Loaded>
    private let expiry: Gauge

    init(configuration: GatewayTLSConfiguration, metricsFactory: any MetricsFactory) throws {
        self.configuration = configuration
        let loaded = try Self.load(configuration, files: try Self.read(configuration))
        self.loaded = Mutex(loaded)
        self.expiry = Gauge(
            label: "liverelay_gateway_tls_certificate_expiry_timestamp_seconds",
            factory: metricsFactory
        )
        self.expiry.record(loaded.notValidAfter)
    }

    /// The TLS context for a new connection.
    var context: NIOSSLContext { self.loaded.withLock { $0.context } }

    /// The certificate in use, for the log: subject, expiry.
    var summary: String { self.loaded.withLock { $0.summary } }

    /// Reads the files again and, if they changed, uses the certificate they now hold; `nil` if they did not change.
    func reloadIfChanged() -> GatewayTLSReload? {
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

    private static func read(_ configuration: GatewayTLSConfiguration) throws -> Files {
        Files(
            certificate: try Self.contents(of: configuration.certificateChainFile, what: "certificate"),
            key: try Self.contents(of: configuration.privateKeyFile, what: "private key")
        )
    }

    private static func contents(of path: String, what: String) throws -> [UInt8] {
        do {
            return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw GatewayError.invalidCertificate("cannot read the \(what) file \(path): \(error.localizedDescription)")
        }
    }

    private static func load(_ configuration: GatewayTLSConfiguration, files: Files) throws -> Loaded {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(files.certificate)
        } catch {
            throw GatewayError.invalidCertificate(
                "\(configuration.certificateChainFile) holds no PEM certificate: \(error)"
            )
        }
        guard let leaf = chain.first else {
            throw GatewayError.invalidCertificate("\(configuration.certificateChainFile) holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: files.key, format: .pem)
        } catch {
            throw GatewayError.invalidCertificate(
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
            throw GatewayError.invalidCertificate(
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

/// First on every admitted connection: looks at the client's first byte and, for a TLS client, puts the gateway's
/// TLS server after itself (with ``TLSHandshakeWatch`` after that); for anything else it just leaves. Either way the
/// first read goes on to what follows, and this handler is gone after it.
final class TransportSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The TLS record type of a handshake message: the first byte of every ClientHello.
    static let tlsHandshakeRecord: UInt8 = 22

    private let certificate: GatewayCertificate?
    private let gateway: Gateway
    private let stream: StreamID?
    private let logger: Logger

    init(certificate: GatewayCertificate?, gateway: Gateway, stream: StreamID?, logger: Logger) {
        self.certificate = certificate
        self.gateway = gateway
        self.stream = stream
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        // Each way, the read goes on before this handler leaves: a removed handler's context leads nowhere.
        guard buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) == Self.tlsHandshakeRecord else {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        guard let certificate = self.certificate else {
            self.gateway.logRefusal(
                "TLS client (rtmps://) but the gateway has no certificate: publish with rtmp://, or give the "
                    + "gateway one (--tls-cert, --tls-key)",
                stream: self.stream,
                logger: self.logger
            )
            context.close(promise: nil)
            return
        }
        do {
            let pipeline = context.pipeline.syncOperations
            let watch = TLSHandshakeWatch(gateway: self.gateway, stream: self.stream, logger: self.logger)
            try pipeline.addHandler(watch, position: .after(self))
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
extension TransportSniffer: Sendable {}

/// Right after the TLS server until its handshake ends: a handshake that fails is refused like any other connection
/// the gateway turns away (logged with the reason, counted), instead of closing without a word.
final class TLSHandshakeWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let gateway: Gateway
    private let stream: StreamID?
    private let logger: Logger
    private var failed = false

    init(gateway: Gateway, stream: StreamID?, logger: Logger) {
        self.gateway = gateway
        self.stream = stream
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
        self.gateway.logRefusal("TLS handshake failed: \(error)", stream: self.stream, logger: self.logger)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension TLSHandshakeWatch: Sendable {}
