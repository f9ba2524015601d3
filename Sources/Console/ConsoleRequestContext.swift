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

public import Hummingbird
public import NIOCore

/// A request context with the client's address, for a server of the console's own (`liverelay console`; local mode's
/// listener has the gateway's `GatewayHTTPContext`, which carries it too): the
/// sign-in throttle counts failures per address with it, and a trusted proxy's header is accepted only from the
/// proxy's addresses.
public struct ConsoleRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
