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

import Logging
import NIOCore
import NIOSSL
import RTMP

/// One live publish, fanned out: every message from the publisher goes to each target's queue, and each target's
/// connection runs on its own.
struct FanOut: Sendable {
    let targets: [PushTarget]

    init(
        configuration: RelayConfiguration,
        sslContext: NIOSSLContext?,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) {
        self.targets = configuration.targets.filter(\.enabled).map {
            PushTarget(
                configuration: $0,
                relay: configuration,
                sslContext: $0.url.useTLS ? sslContext : nil,
                eventLoopGroup: eventLoopGroup,
                logger: logger
            )
        }
    }

    /// Hands a publisher's message to every target. Never suspends: a target that cannot keep up drops its own
    /// queue (see ``TargetQueueStateMachine``).
    func publish(_ message: RTMPMessage) {
        let classified = RelayMessage(classifying: message)
        for target in self.targets {
            target.queue.enqueue(classified)
        }
    }

    /// The publisher ended: each target sends what it holds, then unpublishes.
    func finish() {
        for target in self.targets {
            target.queue.finish()
        }
    }

    /// Runs every target's connection until the publisher ended and they drained, or until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for target in self.targets {
                group.addTask {
                    await target.run()
                }
            }
        }
    }
}
