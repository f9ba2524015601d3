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

public import ArgumentParser
public import Logging

/// `--log-level`, shared by every command: parsed and checked by the argument parser (an unknown level is refused
/// with the list of levels), and the one place that sets up logging.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level (default: info; notice for liverelay local).")
    var logLevel: Logger.Level?

    /// Sends every log to standard error at `--log-level`, or at `defaultLevel` when it is not given.
    func bootstrap(defaultLevel: Logger.Level = .info) {
        let level = self.logLevel ?? defaultLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
