// swift-tools-version:6.2
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

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "liverelay",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "liverelay", targets: ["liverelay"]),
        .library(name: "RTMP", targets: ["RTMP"]),
        .library(name: "Media", targets: ["Media"]),
        .library(name: "WebRTC", targets: ["WebRTC"]),
        .library(name: "Relay", targets: ["Relay"]),
        .library(name: "LiveStreamModel", targets: ["LiveStreamModel"]),
        .library(name: "Gateway", targets: ["Gateway"]),
        .library(name: "Operator", targets: ["Operator"]),
        .library(name: "LocalRuntime", targets: ["LocalRuntime"]),
        .library(name: "Console", targets: ["Console"]),
        .library(name: "Preview", targets: ["Preview"]),
        .library(name: "WebRTCMedia", targets: ["WebRTCMedia"]),
        .library(name: "KubernetesClient", targets: ["KubernetesClient"]),
        .library(name: "KubernetesController", targets: ["KubernetesController"]),
        .library(name: "KubernetesTestServer", targets: ["KubernetesTestServer"]),
        .library(name: "ConsoleCluster", targets: ["ConsoleCluster"]),
        .executable(name: "kube-test-server", targets: ["kube-test-server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
    ],
    targets: [
        // RTMP wire protocol: handshake, chunk stream codec, AMF0, messages, connection state machines.
        .target(
            name: "RTMP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                // HMAC-SHA256 for the digest handshake that Flash-era servers and ffmpeg use.
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // FLV tags, codec configuration records, keyframes. Knows nothing of sockets.
        .target(
            name: "Media",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio")
            ],
            swiftSettings: swiftSettings
        ),
        // What a long-running process gives back to the system once a phase is over: code pages, glibc's free heap.
        .target(
            name: "ResidentMemory",
            swiftSettings: swiftSettings
        ),
        // One publisher in, N push targets out.
        .target(
            name: "Relay",
            dependencies: [
                "TimeSupport",
                "RTMP",
                "Media",
                "Preview",
                "LiveStreamModel",
                "RelayAPI",
                "IngestNetworking",
                "IngestTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "liverelay",
            dependencies: [
                "Console",
                "ConsoleCluster",
                "TimeSupport",
                "Relay",
                "ResidentMemory",
                "Gateway",
                "IngestTLS",
                "LiveStreamModel",
                "LocalRuntime",
                "Operator",
                "KubernetesClient",
                "KubernetesController",
                "WebRTC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // rtmps:// ingest on the ports that take rtmp://: the certificate (reloaded when it changes) and the handler that
        // tells a TLS client from an RTMP one by its first byte. Shared by the gateway and the relay.
        .target(
            name: "IngestTLS",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the ports that take encoders share, in the gateway and in the relay: the PROXY protocol header the gateway
        // writes and the relay reads, and socket addresses as logs and stats show them.
        .target(
            name: "IngestNetworking",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio")
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IngestNetworkingTests",
            dependencies: [
                "IngestNetworking",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Always-on gateway: listeners per stream port, hold-and-activate, TCP proxy, connection accounting.
        .target(
            name: "Gateway",
            dependencies: [
                "TimeSupport",
                "IngestNetworking",
                "IngestTLS",
                "LiveStreamModel",
                "RTMP",
                "WebRTC",
                "WebRTCMedia",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [
                .embedInCode("Resources/go-live.html"),
                .embedInCode("Resources/go-live.js"),
                .embedInCode("Resources/go-live.css"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "IngestTLS",
                "Gateway",
                "WebRTC",
                "LiveStreamModel",
                "PeerTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The LiveStream resource as a domain: spec, status, validation, port allocation, YAML documents. Shared by the
        // operator, the gateway, local mode and the relay; knows no Kubernetes API. NIOCore for IPRange's addresses.
        .target(
            name: "LiveStreamModel",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LiveStreamModelTests",
            dependencies: [
                "LiveStreamModel",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // libavformat, libavcodec and libavutil for the preview, loaded with dlopen when a preview first starts
        // (their headers come from Debian's libavformat-dev; see Sources/CFFmpeg/include/CFFmpeg.h for why).
        .target(
            name: "CFFmpeg",
            linkerSettings: [.linkedLibrary("dl")]
        ),
        // Live preview: remuxes the relay's stream into HLS and fragmented MP4 with libavformat, no transcoding.
        .target(
            name: "Preview",
            dependencies: [
                "TimeSupport",
                "CFFmpeg",
                "Media",
                "RelayAPI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PreviewTests",
            dependencies: [
                "Preview",
                "Relay",
                "RelayAPI",
                "PeerTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // WHIP ingest, the media side: decrypted RTP and RTCP in, what an RTMP publisher sends out. RTP/RTCP parsing
        // and builders, a jitter buffer with NACK, the H.264 depacketizer, Opus to AAC with libavcodec, A/V sync.
        .target(
            name: "WebRTCMedia",
            dependencies: [
                "CFFmpeg",
                "Media",
                "RTMP",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebRTCMediaTests",
            dependencies: [
                "WebRTCMedia",
                "Media",
                "RTMP",
                "PeerTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The operator: LiveStreamModel onto Kubernetes (reconciler, children, port allocation, status), and the
        // gateway's Kubernetes route source and activator.
        .target(
            name: "Operator",
            dependencies: [
                "TimeSupport",
                "ResidentMemory",
                "LiveStreamModel",
                "RelayAPI",
                "Gateway",
                "KubernetesClient",
                "KubernetesController",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OperatorTests",
            dependencies: [
                "TimeSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                "KubernetesTestSupport",
                "Operator",
                "LiveStreamModel",
                "RelayAPI",
                "Gateway",
                "KubernetesClient",
                "KubernetesController",
                "KubernetesTestServer",
                "PeerTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Helm chart rendered with the real Helm library, validated, and installed into the API test server.
        .testTarget(
            name: "ChartTests",
            dependencies: [
                "ConsoleCluster",
                "TimeSupport",
                "KubernetesTestSupport",
                "Operator",
                "LiveStreamModel",
                "Gateway",
                "KubernetesClient",
                "KubernetesController",
                "KubernetesTestServer",
                "PeerTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The console: users, sessions, the JSON API with server-sent events, the single-page app (embedded), the
        // store protocols a stream store and a user store implement, and the local user store and streams file editor.
        .target(
            name: "Console",
            dependencies: [
                "LiveStreamModel",
                "RelayAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [
                .embedInCode("Resources/index.html"),
                .embedInCode("Resources/app.js"),
                .embedInCode("Resources/app.css"),
            ],
            swiftSettings: swiftSettings
        ),
        // The console against its store seams (HummingbirdTesting), and in headless Chromium and Firefox against local
        // mode.
        .testTarget(
            name: "ConsoleTests",
            dependencies: [
                "Console",
                "ConsoleCluster",
                "KubernetesClient",
                "KubernetesController",
                "Operator",
                "TimeSupport",
                "KubernetesTestSupport",
                .product(name: "Prometheus", package: "swift-prometheus"),
                "LiveStreamModel",
                "LocalRuntime",
                "Gateway",
                "RelayAPI",
                "PeerTestSupport",
                "BrowserTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Local mode: LiveStreamModel onto local processes, behind the in-process gateway.
        .target(
            name: "LocalRuntime",
            dependencies: [
                "TimeSupport",
                "LiveStreamModel",
                "RelayAPI",
                "Gateway",
                "Preview",
                "Console",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // The web console's cluster side: streams (LiveStreams and their Secrets, one watch for every browser) and
        // users (bcrypt hashes in a Secret) through the Kubernetes API. The Console module adapts it to its stores.
        .target(
            name: "ConsoleCluster",
            dependencies: [
                "Console",
                "LiveStreamModel",
                "KubernetesClient",
                "KubernetesController",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConsoleClusterTests",
            dependencies: [
                "Console",
                "ConsoleCluster",
                "LiveStreamModel",
                "KubernetesClient",
                "KubernetesController",
                "KubernetesTestServer",
                "KubernetesTestSupport",
                "PeerTestSupport",
                "TimeSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Kubernetes REST client: transport seam, kubeconfig and in-cluster auth, typed CRUD, watch, apply.
        .target(
            name: "KubernetesClient",
            dependencies: [
                "TimeSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // Controller runtime: reflector, work queue, workers, leader election, metrics, as a Service.
        .target(
            name: "KubernetesController",
            dependencies: [
                "TimeSupport",
                "KubernetesClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // An in-process Kubernetes API server with the semantics controllers depend on; kubectl talks to it.
        .target(
            name: "KubernetesTestServer",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "kube-test-server",
            dependencies: [
                "KubernetesTestServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KubernetesTestServerTests",
            dependencies: [
                "KubernetesTestServer",
                "PeerTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KubernetesClientTests",
            dependencies: [
                "TimeSupport",
                "KubernetesTestSupport",
                "KubernetesClient",
                "KubernetesTestServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KubernetesControllerTests",
            dependencies: [
                "PeerTestSupport",
                "TimeSupport",
                "KubernetesTestSupport",
                "KubernetesController",
                "KubernetesClient",
                "KubernetesTestServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Side-by-side benchmark of the relay against nginx-rtmp: publishes, plays back, measures.
        .executableTarget(
            name: "liverelay-bench",
            dependencies: [
                "RTMP",
                "Gateway",
                "LiveStreamModel",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/RelayBench",
            swiftSettings: swiftSettings
        ),
        // The operator at scale: LiveStreams created at once, time to Ready, requests per stream, memory, quiet.
        .executableTarget(
            name: "liverelay-operator-bench",
            dependencies: [
                "KubernetesClient",
                "KubernetesTestServer",
                "LiveStreamModel",
                "Operator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/OperatorBench",
            swiftSettings: swiftSettings
        ),
        // The JSON of the relay's HTTP API, one type for the relay that serves it and for its readers (the operator, local
        // mode, tests), and the report a reader makes of it in a LiveStream's terms.
        .target(
            name: "RelayAPI",
            dependencies: ["LiveStreamModel"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelayAPITests",
            dependencies: ["RelayAPI", "LiveStreamModel"],
            swiftSettings: swiftSettings
        ),
        // OpenSSL 3 (Debian's libssl-dev, loaded at first use) and zlib for WebRTC: the DTLS 1.2 server with use_srtp over memory, the
        // self-signed certificate, SRTP key export, CRC-32. Its header shows no OpenSSL type, since NIOSSL's BoringSSL
        // has headers of the same names.
        .target(
            name: "CWebRTCSSL",
            linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("z")]
        ),
        // libsrtp2 (Debian's libsrtp2-dev, loaded at first use): SRTP and SRTCP protect and unprotect.
        .target(
            name: "CSRTP",
            linkerSettings: [.linkedLibrary("dl")]
        ),
        // WebRTC transport for WHIP ingest: SDP offer/answer, ICE-lite with STUN on one UDP port for every session,
        // DTLS-SRTP, and decrypted RTP and RTCP per session. The media (depacketizing, jitter buffer) is elsewhere.
        .target(
            name: "WebRTC",
            dependencies: [
                "CWebRTCSSL",
                "CSRTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebRTCTests",
            dependencies: [
                "WebRTC",
                "PeerTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Time as numbers other APIs take, in one place: Duration to nanoseconds, milliseconds, seconds.
        .target(
            name: "TimeSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LocalRuntimeTests",
            dependencies: ["LocalRuntime", "Gateway", "LiveStreamModel", "TimeSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ResidentMemoryTests",
            dependencies: ["ResidentMemory"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TimeSupportTests",
            dependencies: ["TimeSupport"],
            swiftSettings: swiftSettings
        ),
        // Real peers for tests: nginx-rtmp (with a TLS front), ffmpeg, ffprobe, started and stopped per test.
        .target(
            name: "PeerTestSupport",
            path: "Tests/PeerTestSupport",
            swiftSettings: swiftSettings
        ),
        // Driving a real browser's page: the DevTools protocol client for headless Chromium, and the page protocol
        // that the console's journeys and the go-live page's tests are written against.
        .target(
            name: "BrowserTestSupport",
            dependencies: [
                "PeerTestSupport",
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/BrowserTestSupport",
            swiftSettings: swiftSettings
        ),
        // One cluster per Kubernetes test: a namespace of its own on the in-process test server or on the cluster of
        // LIVERELAY_TEST_KUBECONFIG, with the CRDs it needs installed, removed afterwards. And a stand-in for what a
        // node does for the relay Deployments (kubelet, endpoints, kube-proxy), running relays as local processes.
        .target(
            name: "KubernetesTestSupport",
            dependencies: [
                "PeerTestSupport",
                "TimeSupport",
                "KubernetesClient",
                "KubernetesController",
                "KubernetesTestServer",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Tests/KubernetesTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PeerTestSupportTests",
            dependencies: ["PeerTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RTMPTests",
            dependencies: [
                "RTMP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MediaTests",
            dependencies: [
                "Media",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelayTests",
            dependencies: [
                "Relay",
                "LiveStreamModel",
                "RTMP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "BrowserTestSupport",
                "IngestTLS",
                "WebRTC",
                "Relay",
                "RelayAPI",
                "LocalRuntime",
                "Gateway",
                "LiveStreamModel",
                "PeerTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                "RTMP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
