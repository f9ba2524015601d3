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

public import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOSSL
import TimeSupport

/// The real transport: AsyncHTTPClient, with the cluster's CA and client certificate.
///
/// Response bodies are streamed, never collected here, so a watch holds at most what its consumer has not read.
public struct AsyncHTTPClientTransport: KubernetesTransport {
    private let client: HTTPClient
    private let server: String
    private let requestTimeout: Duration

    public init(client: HTTPClient, server: String, requestTimeout: Duration = .seconds(30)) {
        self.client = client
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.requestTimeout = requestTimeout
    }

    /// The HTTPClient configuration for a cluster: TLS trust, client certificate, and no read timeout (a watch may
    /// be silent for minutes).
    public static func httpClientConfiguration(
        for configuration: KubernetesConfiguration
    ) throws -> HTTPClient.Configuration {
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = configuration.certificateAuthorityPEM {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
            }
            if let certificate = configuration.clientCertificate {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate.certificatePEM)
                    .map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: certificate.keyPEM, format: .pem))
            }
        } catch {
            throw KubernetesError.configuration("invalid certificate or key", cause: error)
        }
        if configuration.insecureSkipTLSVerify {
            tls.certificateVerification = .none
        }
        var httpConfiguration = HTTPClient.Configuration(tlsConfiguration: tls)
        httpConfiguration.timeout = HTTPClient.Configuration.Timeout(
            connect: TimeAmount(configuration.connectTimeout)
        )
        // Over HTTP/1.1 every watch holds a connection for as long as it runs (HTTP/2, which an API server speaks
        // over TLS, multiplexes them). AsyncHTTPClient's default of 8 per host would leave a controller that watches
        // its children, the Secrets they name and a Service (ten watches) no connection for a single request.
        httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        return httpConfiguration
    }

    public func send(
        _ request: KubernetesRequest,
        body: KubernetesBody?
    ) async throws -> (
        KubernetesResponse, KubernetesBody
    ) {
        var httpRequest = HTTPClientRequest(url: self.server + request.target)
        httpRequest.method = HTTPMethod(rawValue: request.method.rawValue)
        for (name, value) in request.headers {
            httpRequest.headers.add(name: name, value: value)
        }
        if let body {
            if let buffer = body.buffer {
                httpRequest.body = .bytes(buffer)
            } else {
                httpRequest.body = .bytes(try await body.collect(upTo: 64 * 1024 * 1024))
            }
        }
        // Watches run until the server ends them (`timeoutSeconds`) or the caller cancels.
        let isWatch = request.queryValue("watch") == "true"
        let timeout: TimeAmount =
            isWatch ? .hours(24 * 365) : TimeAmount(self.requestTimeout)
        let response: HTTPClientResponse
        do {
            response = try await self.client.execute(httpRequest, timeout: timeout)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw KubernetesError.transport("\(request.method.rawValue) \(request.path) failed", cause: error)
        }
        let headers = response.headers.map { (name: $0.name, value: $0.value) }
        return (
            KubernetesResponse(status: Int(response.status.code), headers: headers),
            KubernetesBody(ResponseBody(body: response.body))
        )
    }

    /// Wraps AsyncHTTPClient's body so read errors surface as ``KubernetesError``.
    private struct ResponseBody: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let body: HTTPClientResponse.Body

        struct AsyncIterator: AsyncIteratorProtocol {
            var base: HTTPClientResponse.Body.AsyncIterator

            mutating func next() async throws -> ByteBuffer? {
                do {
                    return try await self.base.next()
                } catch let error as CancellationError {
                    throw error
                } catch {
                    throw KubernetesError.transport("reading the response body failed", cause: error)
                }
            }
        }

        func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(base: self.body.makeAsyncIterator())
        }
    }
}
