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
import IngestTLS

/// `--tls-cert` and `--tls-key`: the certificate for encoders that publish with `rtmps://`, shared by
/// `liverelay gateway`, `liverelay local` (whose gateway takes it) and `liverelay relay`.
struct IngestTLSOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "PEM certificate (with its chain) for encoders that publish with rtmps://.",
            discussion: "rtmp:// keeps working on the same port(s). The files are read again every 30 s."
        )
    )
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    func validate() throws {
        guard (self.tlsCert == nil) == (self.tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together: give both, or neither for rtmp:// only.")
        }
    }

    /// The gateway's TLS configuration, or `nil` for `rtmp://` only.
    var configuration: IngestTLSConfiguration? {
        guard let certificate = self.tlsCert, let key = self.tlsKey else {
            return nil
        }
        return IngestTLSConfiguration(certificateChainFile: certificate, privateKeyFile: key)
    }
}
