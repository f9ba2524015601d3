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

/// A person who signs in to the console.
public struct ConsoleUser: Codable, Hashable, Sendable {
    /// The sign-in name: 1 to 63 lowercase letters, digits and '-' (``ConsoleUser/nameProblem(_:)``).
    public var name: String
    /// The bcrypt hash of the password (`$2b$…`); never the password.
    public var passwordHash: String
    /// An admin sees and changes every stream; anyone else only the streams of ``namespace``.
    public var admin: Bool
    /// The namespace whose streams are the user's (in a cluster, the Kubernetes namespace).
    public var namespace: String
    /// "One stream live at a time": going live with one stream takes the user's others offline. On by default.
    public var oneLiveAtATime: Bool

    public init(name: String, passwordHash: String, admin: Bool, namespace: String, oneLiveAtATime: Bool = true) {
        self.name = name
        self.passwordHash = passwordHash
        self.admin = admin
        self.namespace = namespace
        self.oneLiveAtATime = oneLiveAtATime
    }
}
