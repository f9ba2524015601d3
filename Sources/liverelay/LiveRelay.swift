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
import Operator

@main
struct LiveRelay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liverelay",
        abstract: "Live-stream relays: one publisher in, every target out; per stream, scaled to zero when idle.",
        version: OperatorConfiguration.version,
        subcommands: [
            LocalCommand.self, ConsoleCommand.self, RelayCommand.self, GatewayCommand.self, OperatorCommand.self,
            TeardownCommand.self,
        ]
    )
}
