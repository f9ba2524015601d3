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
import Foundation
import KubernetesClient
import LiveStreamModel
import Logging
import Operator

struct TeardownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "teardown",
        abstract: "Before the operator is uninstalled: delete or release every LiveStream, so none is left stuck.",
        discussion: """
            Run while the operator still runs, as the chart's pre-delete hook does (tools/down.sh does the same with kubectl). \
            --streams delete (the default) deletes every LiveStream and waits for the operator to release each; \
            one still there after --timeout has its liverelay.io/release-port finalizer removed. \
            --streams release keeps every LiveStream and its relay and removes only the finalizer, so a stream can \
            be deleted later without the operator. Exits non-zero if the API server cannot be reached or refuses.
            """
    )

    @OptionGroup var cluster: ClusterOptions

    @Option(help: "The namespace whose LiveStreams are torn down (default: every namespace).")
    var namespace: String?

    @Option(help: "delete: delete every LiveStream; release: keep them and remove only the operator's finalizer.")
    var streams = LiveStreamTeardown.Mode.delete.rawValue

    @Option(help: "Seconds deleted LiveStreams are given to be released by the operator.")
    var timeout = 120

    @OptionGroup(title: "Logging")
    var log: LogOptions

    func validate() throws {
        guard LiveStreamTeardown.Mode(rawValue: self.streams) != nil else {
            throw ValidationError("--streams must be delete or release, not \(self.streams).")
        }
        guard self.timeout >= 0 else {
            throw ValidationError("--timeout must be 0 or more seconds.")
        }
    }

    func run() async throws {
        self.log.bootstrap()
        let logger = Logger(label: "liverelay.teardown")
        let kubernetes = try self.cluster.kubernetesConfiguration()
        try await withKubernetesClient(configuration: kubernetes, logger: logger) { client in
            let teardown = LiveStreamTeardown(client: client, namespace: self.namespace, logger: logger)
            let report = try await teardown.run(
                mode: LiveStreamTeardown.Mode(rawValue: self.streams) ?? .delete,
                timeout: .seconds(self.timeout)
            )
            logger.notice(
                "teardown done",
                metadata: [
                    "liverelay.deleted": "\(report.deleted.count)",
                    "liverelay.released": "\(report.released.map(\.description).joined(separator: ","))",
                ]
            )
        }
    }
}
