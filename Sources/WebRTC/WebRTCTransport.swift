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

public import Logging
public import NIOCore
import NIOPosix

/// How the transport listens and what it announces.
public struct WebRTCTransportConfiguration: Sendable {
    /// The address the UDP socket binds.
    public var host: String
    /// The UDP port; 0 for an ephemeral one (tests).
    public var port: Int
    /// The addresses candidates announce, in order of preference; the bound address when empty.
    public var announcedAddresses: [String]
    /// The UDP port candidates announce (a Service's port in front of ours); the bound port when nil.
    public var announcedPort: Int?
    /// TCP candidates to announce (RFC 6544) for an ICE-TCP listener in front of this transport.
    public var announcedTCPCandidates: [ICECandidate]
    /// The port of our own ICE-TCP listener (RFC 6544 passive candidates, RFC 4571 framing) on ``host``; 0 for an
    /// ephemeral one, nil for none.
    public var tcpPort: Int?
    /// The TCP port candidates announce; the bound one when nil.
    public var announcedTCPPort: Int?
    /// Whether answers announce the UDP candidates (off only to test ICE-TCP alone).
    public var announcesUDP: Bool
    /// The most ICE-TCP connections at once.
    public var maximumTCPConnections: Int
    /// How long an ICE-TCP connection may stay open without passing a check.
    public var tcpCheckTimeout: TimeAmount
    /// The most sessions at once; ``WebRTCTransport/register(offer:logger:)`` refuses more.
    public var maximumSessions: Int
    /// ICE timeouts and limits per session.
    public var ice: ICELiteAgent.Configuration
    /// How long after registration the DTLS handshake must have completed.
    public var handshakeTimeout: TimeAmount
    /// How many events a session buffers for a slow reader; beyond it the oldest are dropped.
    public var eventBufferSize: Int
    /// How often sessions are checked for timeouts.
    public var tickInterval: TimeAmount
    /// Limits on offers.
    public var sdpLimits: SessionDescription.Limits

    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        announcedAddresses: [String] = [],
        announcedPort: Int? = nil,
        announcedTCPCandidates: [ICECandidate] = []
    ) {
        self.host = host
        self.port = port
        self.announcedAddresses = announcedAddresses
        self.announcedPort = announcedPort
        self.announcedTCPCandidates = announcedTCPCandidates
        self.tcpPort = nil
        self.announcedTCPPort = nil
        self.announcesUDP = true
        self.maximumTCPConnections = 1024
        self.tcpCheckTimeout = .seconds(10)
        self.maximumSessions = 256
        self.ice = ICELiteAgent.Configuration()
        self.handshakeTimeout = .seconds(30)
        self.eventBufferSize = 4096
        self.tickInterval = .milliseconds(500)
        self.sdpLimits = SessionDescription.Limits()
    }
}

/// What a session delivers, in order.
public enum WebRTCSessionEvent: Sendable {
    /// The peer nominated an ICE pair.
    case iceConnected
    /// DTLS completed, the peer's certificate matched its offer's fingerprint, and SRTP is keyed.
    case dtlsConnected(SRTPProfile)
    /// A decrypted RTP packet.
    case rtp(ByteBuffer)
    /// A decrypted RTCP packet (possibly compound).
    case rtcp(ByteBuffer)
}

/// Counters of one session.
public struct WebRTCSessionStatistics: Hashable, Sendable {
    public var rtpPackets = 0
    public var rtcpPackets = 0
    /// STUN checks refused (wrong credentials, bad integrity, malformed).
    public var rejectedSTUN = 0
    /// SRTP or SRTCP packets libsrtp2 refused (wrong key, forged, replayed).
    public var rejectedSRTP = 0
    /// Datagrams from addresses that have not passed a check, or of no known kind.
    public var droppedDatagrams = 0
    /// RTCP packets sent with ``WebRTCSession/sendRTCP(_:)``.
    public var sentRTCP = 0
    /// ICE restarts (``WebRTCSession/restartICE(remoteUsernameFragment:)``).
    public var iceRestarts = 0
    /// STUN checks answered under the current ICE credentials: since the last restart, or since the start.
    public var answeredChecks = 0

    public init() {}
}

/// One WHIP session: what the answer accepted, and the decrypted packets.
public final class WebRTCSession: Sendable {
    /// A random identifier, for the WHIP resource URL.
    public let id: String
    /// The SDP answer for the WHIP response.
    public let answer: String
    /// The accepted media (payload types as answered).
    public let media: [NegotiatedMedia]
    /// The peer's ICE credentials from its offer. Not written to logs.
    public let offeredCredentials: ICECredentials
    /// The session's events. It ends when the session closes: without an error on ``close()`` or the peer's
    /// close_notify, with a ``WebRTCError`` on a timeout or a failed handshake. Ending the iteration closes the session.
    public let events: AsyncThrowingStream<WebRTCSessionEvent, any Error>
    private let transport: WebRTCTransport

    init(
        id: String,
        answer: String,
        media: [NegotiatedMedia],
        offeredCredentials: ICECredentials,
        events: AsyncThrowingStream<WebRTCSessionEvent, any Error>,
        transport: WebRTCTransport
    ) {
        self.id = id
        self.answer = answer
        self.media = media
        self.offeredCredentials = offeredCredentials
        self.events = events
        self.transport = transport
    }

    /// Protects an RTCP packet (PLI, NACK, receiver report) with the session's outbound SRTCP key and sends it to the
    /// nominated address. Dropped while SRTP is not keyed yet.
    public func sendRTCP(_ packet: ByteBuffer) {
        self.transport.sendRTCP(packet, session: self.id)
    }

    /// The candidates the answer announced, for an ICE restart's answer.
    public var candidates: [ICECandidate] { self.transport.candidates }

    /// Restarts ICE with the peer's new username fragment (a WHIP PATCH, RFC 9725 §4.3.3) and returns our new
    /// credentials. From the event loop's next turn STUN reaches the session only under them; the DTLS association
    /// and SRTP keys continue, as does media on the addresses that passed a check before.
    public func restartICE(remoteUsernameFragment: String) -> ICECredentials {
        self.transport.restartICE(session: self.id, remoteUsernameFragment: remoteUsernameFragment)
    }

    /// Ends the session (WHIP DELETE): close_notify to the peer, then the events end.
    public func close() {
        self.transport.closeSession(self.id, error: nil)
    }

    /// The session's counters, or nil once it has ended.
    public func statistics() async -> WebRTCSessionStatistics? {
        await self.transport.statistics(session: self.id)
    }
}

/// WebRTC ingest's transport: one UDP socket for every session, ICE-lite, DTLS-SRTP, decrypted RTP and RTCP per
/// session.
///
/// Datagrams are told apart by their first byte (RFC 7983): STUN goes to the session whose ICE username fragment
/// it names, DTLS and SRTP to the session whose check that remote address passed.
public final class WebRTCTransport: Sendable {
    private let channel: any Channel
    private let tcpChannel: (any Channel)?
    private let handler: NIOLoopBound<WebRTCDatagramHandler>
    private let configuration: WebRTCTransportConfiguration
    private let context: DTLSServerContext
    private let logger: Logger

    /// The address the socket is bound to.
    public let localAddress: SocketAddress

    /// The address the ICE-TCP listener is bound to, if there is one.
    public var tcpLocalAddress: SocketAddress? { self.tcpChannel?.localAddress }

    /// The candidates answers announce.
    public let candidates: [ICECandidate]

    /// Binds the UDP socket. With no certificate, one is generated.
    public static func bind(
        configuration: WebRTCTransportConfiguration,
        certificate: DTLSCertificate? = nil,
        group: (any EventLoopGroup)? = nil,
        logger: Logger
    ) async throws -> WebRTCTransport {
        let group = group ?? MultiThreadedEventLoopGroup.singleton
        let context = try DTLSServerContext(certificate: certificate ?? DTLSCertificate.generate())
        let tick = configuration.tickInterval
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        WebRTCDatagramHandler(tickInterval: tick, logger: logger)
                    )
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(
                try channel.pipeline.syncOperations.handler(type: WebRTCDatagramHandler.self),
                eventLoop: channel.eventLoop
            )
        }.get()
        var tcpChannel: (any Channel)?
        if let tcpPort = configuration.tcpPort {
            let maximum = configuration.maximumTCPConnections
            let checkTimeout = configuration.tcpCheckTimeout
            do {
                // The listener and its connections share the UDP channel's loop, so frames reach the sessions
                // without a hop.
                tcpChannel = try await ServerBootstrap(group: channel.eventLoop)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { child in
                        child.eventLoop.makeCompletedFuture {
                            guard handler.value.tcpConnectionCount < maximum else {
                                throw WebRTCError.limitExceeded("\(maximum) ICE-TCP connections are open")
                            }
                            try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(RFC4571FrameDecoder()))
                            try child.pipeline.syncOperations.addHandler(
                                ICETCPConnectionHandler(central: handler, checkTimeout: checkTimeout)
                            )
                        }
                    }
                    .bind(host: configuration.host, port: tcpPort)
                    .get()
            } catch {
                try? await channel.close()
                throw error
            }
        }
        return WebRTCTransport(
            channel: channel,
            tcpChannel: tcpChannel,
            handler: handler,
            configuration: configuration,
            context: context,
            logger: logger
        )
    }

    private init(
        channel: any Channel,
        tcpChannel: (any Channel)?,
        handler: NIOLoopBound<WebRTCDatagramHandler>,
        configuration: WebRTCTransportConfiguration,
        context: DTLSServerContext,
        logger: Logger
    ) {
        self.channel = channel
        self.tcpChannel = tcpChannel
        self.handler = handler
        self.configuration = configuration
        self.context = context
        self.logger = logger
        let bound = channel.localAddress!
        self.localAddress = bound
        let addresses =
            configuration.announcedAddresses.isEmpty
            ? [bound.ipAddress ?? configuration.host]
            : configuration.announcedAddresses
        let port = configuration.announcedPort ?? bound.port ?? configuration.port
        var candidates: [ICECandidate] = []
        if configuration.announcesUDP {
            candidates += addresses.map { ICECandidate(address: $0, port: port, transport: .udp) }
        }
        if let tcpChannel, let tcpPort = configuration.announcedTCPPort ?? tcpChannel.localAddress?.port {
            candidates += addresses.map { ICECandidate(address: $0, port: tcpPort, transport: .tcp) }
        }
        self.candidates = candidates + configuration.announcedTCPCandidates
    }

    /// Our certificate's SHA-256 fingerprint.
    public var fingerprint: [UInt8] { self.context.certificate.fingerprint }

    /// Reads a WHIP offer, makes the answer, and starts a session that waits for the peer's ICE checks.
    ///
    /// Throws ``WebRTCError`` for an offer we cannot answer (``WebRTCError/Code-swift.struct/noH264`` for a VP8-only
    /// one) and ``WebRTCError/Code-swift.struct/limitExceeded`` when ``WebRTCTransportConfiguration/maximumSessions``
    /// are open.
    public func register(offer text: String, logger: Logger? = nil) async throws -> WebRTCSession {
        let offer = try WHIPOffer(parsing: text, limits: self.configuration.sdpLimits)
        let id = randomString(length: 16, alphabet: "0123456789abcdef")
        let localFragment = randomString(length: 8, alphabet: iceAlphabet)
        let localPassword = randomString(length: 24, alphabet: iceAlphabet)
        let answer = offer.answer(
            localUsernameFragment: localFragment,
            localPassword: localPassword,
            fingerprint: self.fingerprint,
            candidates: self.candidates,
            sessionID: UInt64.random(in: 1...UInt64(Int64.max))
        )
        let (events, continuation) = AsyncThrowingStream<WebRTCSessionEvent, any Error>.makeStream(
            bufferingPolicy: .bufferingNewest(self.configuration.eventBufferSize)
        )
        var logger = logger ?? self.logger
        logger[metadataKey: "webrtc.session.id"] = "\(id)"
        let sessionLogger = logger
        let dtlsContext = self.context
        let configuration = self.configuration
        let handler = self.handler
        let registered = try await self.channel.eventLoop.submit {
            let now = NIODeadline.now()
            let dtls = try DTLSServerConnection(context: dtlsContext)
            let state = SessionState(
                id: id,
                agent: ICELiteAgent(
                    localUsernameFragment: localFragment,
                    localPassword: localPassword,
                    remoteUsernameFragment: offer.remoteUsernameFragment,
                    now: now,
                    configuration: configuration.ice
                ),
                dtls: dtls,
                remoteFingerprint: offer.remoteFingerprint,
                handshakeDeadline: now + configuration.handshakeTimeout,
                continuation: continuation,
                logger: sessionLogger
            )
            return handler.value.add(state, maximumSessions: configuration.maximumSessions)
        }.get()
        guard registered else {
            continuation.finish()
            throw WebRTCError.limitExceeded("\(configuration.maximumSessions) WebRTC sessions are open")
        }
        continuation.onTermination = { [weak self] _ in
            self?.closeSession(id, error: nil)
        }
        sessionLogger.debug(
            "WebRTC session registered",
            metadata: ["webrtc.media": "\(offer.media.map { "\($0.kind.rawValue):\($0.payloadType)" })"]
        )
        return WebRTCSession(
            id: id,
            answer: answer,
            media: offer.media,
            offeredCredentials: ICECredentials(
                usernameFragment: offer.remoteUsernameFragment,
                password: offer.remotePassword
            ),
            events: events,
            transport: self
        )
    }

    func restartICE(session id: String, remoteUsernameFragment: String) -> ICECredentials {
        let local = ICECredentials(
            usernameFragment: randomString(length: 8, alphabet: iceAlphabet),
            password: randomString(length: 24, alphabet: iceAlphabet)
        )
        let handler = self.handler
        self.channel.eventLoop.execute {
            handler.value.restartICE(session: id, local: local, remoteUsernameFragment: remoteUsernameFragment)
        }
        return local
    }

    func sendRTCP(_ packet: ByteBuffer, session id: String) {
        let handler = self.handler
        self.channel.eventLoop.execute { handler.value.sendRTCP(packet, session: id) }
    }

    func closeSession(_ id: String, error: WebRTCError?) {
        let handler = self.handler
        self.channel.eventLoop.execute { handler.value.close(session: id, error: error) }
    }

    func statistics(session id: String) async -> WebRTCSessionStatistics? {
        let handler = self.handler
        return try? await self.channel.eventLoop.submit { handler.value.statistics(session: id) }.get()
    }

    /// The number of open sessions.
    public func sessionCount() async -> Int {
        let handler = self.handler
        return (try? await self.channel.eventLoop.submit { handler.value.sessionCount }.get()) ?? 0
    }

    /// Closes every session and the socket.
    public func close() async {
        let handler = self.handler
        try? await self.channel.eventLoop.submit { handler.value.closeAll() }.get()
        try? await self.tcpChannel?.close()
        try? await self.channel.eventLoop.submit { handler.value.closeTCPConnections() }.get()
        try? await self.channel.close()
    }
}

// MARK: - The event loop side

/// One session's state, owned by the channel's event loop.
final class SessionState {
    let id: String
    var agent: ICELiteAgent
    let dtls: DTLSServerConnection
    let remoteFingerprint: [UInt8]
    let handshakeDeadline: NIODeadline
    let continuation: AsyncThrowingStream<WebRTCSessionEvent, any Error>.Continuation
    let logger: Logger
    var inbound: SRTPContext?
    var outbound: SRTPContext?
    var dtlsAddress: SocketAddress?
    var dtlsTimer: Scheduled<Void>?
    var statistics = WebRTCSessionStatistics()

    init(
        id: String,
        agent: ICELiteAgent,
        dtls: DTLSServerConnection,
        remoteFingerprint: [UInt8],
        handshakeDeadline: NIODeadline,
        continuation: AsyncThrowingStream<WebRTCSessionEvent, any Error>.Continuation,
        logger: Logger
    ) {
        self.id = id
        self.agent = agent
        self.dtls = dtls
        self.remoteFingerprint = remoteFingerprint
        self.handshakeDeadline = handshakeDeadline
        self.continuation = continuation
        self.logger = logger
    }
}

@available(*, unavailable)
extension SessionState: Sendable {}

final class WebRTCDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private var router = SessionRouter<String>()
    private var sessions: [String: SessionState] = [:]
    private var context: ChannelHandlerContext?
    private var ticker: RepeatedTask?
    private let tickInterval: TimeAmount
    private let logger: Logger

    init(tickInterval: TimeAmount, logger: Logger) {
        self.tickInterval = tickInterval
        self.logger = logger
    }

    var sessionCount: Int { self.sessions.count }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.ticker = context.eventLoop.scheduleRepeatedTask(
            initialDelay: self.tickInterval,
            delay: self.tickInterval
        ) { _ in
            loopBound.value.tick(now: .now())
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.ticker?.cancel()
        self.ticker = nil
        self.closeAll()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors for a peer that went away (ECONNREFUSED on a later send) are not the socket's end.
        self.logger.debug("WebRTC socket error", metadata: ["error": "\(error)"])
    }

    func add(_ session: SessionState, maximumSessions: Int) -> Bool {
        guard self.sessions.count < maximumSessions,
            self.router.register(session.id, localUsernameFragment: session.agent.localUsernameFragment)
        else { return false }
        self.sessions[session.id] = session
        return true
    }

    func statistics(session id: String) -> WebRTCSessionStatistics? {
        self.sessions[id]?.statistics
    }

    func restartICE(session id: String, local: ICECredentials, remoteUsernameFragment: String) {
        guard let session = self.sessions[id] else { return }
        guard self.router.rekey(id, localUsernameFragment: local.usernameFragment),
            session.agent.restart(
                localUsernameFragment: local.usernameFragment,
                localPassword: local.password,
                remoteUsernameFragment: remoteUsernameFragment,
                now: .now()
            )
        else {
            self.close(session: id, error: WebRTCError.sessionClosed("the ICE restart could not take its credentials"))
            return
        }
        session.statistics.iceRestarts += 1
        session.statistics.answeredChecks = 0
        session.logger.debug("ICE restarted")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = self.unwrapInboundIn(data)
        self.receive(envelope.data, from: envelope.remoteAddress)
    }

    /// One datagram, or one RFC 4571 frame from an ICE-TCP connection.
    func receive(_ buffer: ByteBuffer, from address: SocketAddress) {
        let bytes = Array(buffer.readableBytesView)
        switch PacketKind(classifying: bytes) {
        case .stun:
            self.handleSTUN(bytes, from: address)
        case .dtls:
            guard let session = self.session(for: address) else { return }
            self.handleDTLS(bytes, from: address, session: session)
        case .rtp, .rtcp:
            guard let session = self.session(for: address) else { return }
            self.handleSRTP(buffer, from: address, isRTCP: PacketKind(classifying: bytes) == .rtcp, session: session)
        case .unknown:
            if let session = self.session(for: address) { session.statistics.droppedDatagrams += 1 }
        }
    }

    // MARK: ICE-TCP connections (RFC 6544), on this handler's event loop

    /// Open ICE-TCP connections by remote address: what is sent to one of these goes over it, framed.
    private var tcpConnections: [SocketAddress: any Channel] = [:]

    var tcpConnectionCount: Int { self.tcpConnections.count }

    func tcpConnected(_ channel: any Channel, from address: SocketAddress) {
        self.tcpConnections[address] = channel
    }

    func tcpClosed(from address: SocketAddress, channel: any Channel) {
        guard self.tcpConnections[address] === channel else { return }
        self.tcpConnections[address] = nil
    }

    func closeTCPConnections() {
        for connection in self.tcpConnections.values { connection.close(promise: nil) }
        self.tcpConnections = [:]
    }

    /// Whether a session has taken a check from `address`.
    func isBound(_ address: SocketAddress) -> Bool {
        self.router.session(for: address) != nil
    }

    private func session(for address: SocketAddress) -> SessionState? {
        guard let id = self.router.session(for: address), let session = self.sessions[id] else { return nil }
        guard session.agent.accepts(from: address) else {
            session.statistics.droppedDatagrams += 1
            return nil
        }
        return session
    }

    private func handleSTUN(_ bytes: [UInt8], from address: SocketAddress) {
        guard let message = try? STUNMessage.decode(bytes), let username = message.username,
            let id = self.router.session(forUsername: username), let session = self.sessions[id]
        else {
            self.logger.trace("STUN for no session dropped", metadata: ["webrtc.remote": "\(address)"])
            return
        }
        let wasConnected = session.agent.isConnected
        let before = session.agent.validatedAddresses
        switch session.agent.receive(stun: bytes, from: address, now: .now()) {
        case .respond(let response):
            session.statistics.answeredChecks += 1
            self.send(response, to: address)
            for evicted in before where !session.agent.validatedAddresses.contains(evicted) {
                self.router.unbind(evicted, from: id)
            }
            self.router.bind(address, to: id)
            if !wasConnected, session.agent.isConnected {
                session.logger.debug("ICE pair nominated", metadata: ["webrtc.remote": "\(address)"])
                session.continuation.yield(.iceConnected)
            }
        case .drop(let error):
            session.statistics.rejectedSTUN += 1
            session.logger.debug("STUN check refused", metadata: ["error": "\(error)"])
        }
    }

    private func handleDTLS(_ bytes: [UInt8], from address: SocketAddress, session: SessionState) {
        if let dtlsAddress = session.dtlsAddress, dtlsAddress != address, session.dtls.isEstablished {
            // The handshake is done on one address; a second one cannot start another. The pair the peer nominated
            // since (after an ICE restart, from a new network) carries the association on.
            guard address == session.agent.selectedAddress else {
                session.statistics.droppedDatagrams += 1
                return
            }
        }
        session.dtlsAddress = address
        let event: DTLSServerConnection.Event
        do {
            event = try session.dtls.receive(bytes)
        } catch {
            // The alert OpenSSL queued goes out first; the session ends, no other.
            self.flushDTLS(session)
            session.logger.notice(
                "WebRTC session ended: DTLS handshake failed",
                metadata: ["webrtc.remote": "\(address)", "error": "\(error)"]
            )
            self.close(session: session.id, error: error)
            return
        }
        self.flushDTLS(session)
        switch event {
        case .none:
            break
        case .closed:
            session.logger.debug("the peer closed DTLS")
            self.close(session: session.id, error: nil)
        case .handshakeCompleted:
            do {
                try session.dtls.verifyPeer(fingerprint: session.remoteFingerprint)
                let keys = try session.dtls.exportSRTPKeyingMaterial()
                session.inbound = try SRTPContext(
                    profile: keys.profile,
                    keyAndSalt: keys.clientKeyAndSalt,
                    direction: .inbound
                )
                session.outbound = try SRTPContext(
                    profile: keys.profile,
                    keyAndSalt: keys.serverKeyAndSalt,
                    direction: .outbound
                )
                session.logger.debug("DTLS-SRTP established", metadata: ["webrtc.srtp.profile": "\(keys.profile)"])
                session.continuation.yield(.dtlsConnected(keys.profile))
            } catch {
                session.logger.notice("DTLS-SRTP refused", metadata: ["error": "\(error)"])
                self.close(session: session.id, error: error)
            }
        }
    }

    /// Sends what OpenSSL queued and re-arms its retransmission timer.
    private func flushDTLS(_ session: SessionState) {
        if let address = session.dtlsAddress {
            for datagram in session.dtls.outgoingDatagrams() { self.send(datagram, to: address) }
        }
        session.dtlsTimer?.cancel()
        session.dtlsTimer = nil
        guard let context = self.context, !session.dtls.isFinished, !session.dtls.isEstablished,
            let timeout = session.dtls.nextTimeout
        else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = session.id
        session.dtlsTimer = context.eventLoop.scheduleTask(in: max(timeout, .milliseconds(1))) {
            loopBound.value.dtlsTimerFired(session: id)
        }
    }

    private func dtlsTimerFired(session id: String) {
        guard let session = self.sessions[id] else { return }
        do {
            try session.dtls.handleTimeout()
            self.flushDTLS(session)
        } catch {
            self.close(session: id, error: error)
        }
    }

    private func handleSRTP(_ buffer: ByteBuffer, from address: SocketAddress, isRTCP: Bool, session: SessionState) {
        guard let inbound = session.inbound else {
            session.statistics.droppedDatagrams += 1
            return
        }
        do {
            if isRTCP {
                let packet = try inbound.unprotectRTCP(buffer)
                session.statistics.rtcpPackets += 1
                session.continuation.yield(.rtcp(packet))
            } else {
                let packet = try inbound.unprotectRTP(buffer)
                session.statistics.rtpPackets += 1
                session.continuation.yield(.rtp(packet))
            }
            session.agent.receivedTraffic(from: address, now: .now())
        } catch {
            session.statistics.rejectedSRTP += 1
        }
    }

    func sendRTCP(_ packet: ByteBuffer, session id: String) {
        guard let session = self.sessions[id], let outbound = session.outbound,
            let address = session.agent.selectedAddress ?? session.dtlsAddress
        else { return }
        guard let protected = try? outbound.protectRTCP(packet) else { return }
        session.statistics.sentRTCP += 1
        self.send(Array(protected.readableBytesView), to: address)
    }

    private func send(_ bytes: [UInt8], to address: SocketAddress) {
        if let connection = self.tcpConnections[address] {
            // RFC 4571 §2: a 16-bit length, then the packet.
            guard bytes.count <= Int(UInt16.max) else { return }
            var frame = connection.allocator.buffer(capacity: bytes.count + 2)
            frame.writeInteger(UInt16(bytes.count))
            frame.writeBytes(bytes)
            connection.writeAndFlush(frame, promise: nil)
            return
        }
        guard let context = self.context else { return }
        let envelope = AddressedEnvelope(remoteAddress: address, data: context.channel.allocator.buffer(bytes: bytes))
        context.writeAndFlush(self.wrapOutboundOut(envelope), promise: nil)
    }

    func tick(now: NIODeadline) {
        for session in Array(self.sessions.values) {
            if case .failed(let error) = session.agent.tick(now: now) {
                session.logger.info("WebRTC session timed out", metadata: ["error": "\(error)"])
                self.close(session: session.id, error: error)
            } else if !session.dtls.isEstablished, now > session.handshakeDeadline {
                self.close(session: session.id, error: WebRTCError.timeout("DTLS did not complete in time"))
            }
        }
    }

    func close(session id: String, error: (any Error)?) {
        guard let session = self.sessions.removeValue(forKey: id) else { return }
        self.router.remove(id)
        defer {
            // ICE-TCP connections of this session go with it, after close_notify has been written to them.
            for address in session.agent.validatedAddresses {
                self.tcpConnections.removeValue(forKey: address)?.close(promise: nil)
            }
        }
        session.dtlsTimer?.cancel()
        if session.dtls.isEstablished, !session.dtls.isFinished {
            session.dtls.shutdown()
            if let address = session.agent.selectedAddress ?? session.dtlsAddress {
                for datagram in session.dtls.outgoingDatagrams() { self.send(datagram, to: address) }
            }
        }
        session.continuation.finish(throwing: error)
        session.logger.debug("WebRTC session closed")
    }

    func closeAll() {
        for id in Array(self.sessions.keys) { self.close(session: id, error: nil) }
    }
}

@available(*, unavailable)
extension WebRTCDatagramHandler: Sendable {}

private let iceAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")

private func randomString(length: Int, alphabet: some Collection<Character>) -> String {
    let characters = Array(alphabet)
    var generator = SystemRandomNumberGenerator()
    return String((0..<length).map { _ in characters.randomElement(using: &generator)! })
}
