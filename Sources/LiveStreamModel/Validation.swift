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

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One thing wrong with a `LiveStream`: the field, as a path from the resource's root, and what is wrong with it.
public struct FieldError: Error, Hashable, Sendable, CustomStringConvertible {
    /// `spec.targets[1].url`, as `kubectl explain` names fields.
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(self.field): \(self.message)" }
}

/// The limits a `LiveStream` must stay within; the CRD's schema states the same ones, so the API server refuses what
/// this would, and local mode (which has no API server) gets the same answers.
public enum LiveStreamLimits {
    /// Children are named `ls-<name>`, and a Service name is a DNS label of at most 63 characters.
    public static let maxNameLength = 60
    public static let maxTargets = 16
    public static let maxSourceRanges = 64
    public static let maxIdleSeconds = 86_400
    public static let maxAppLength = 64
}

extension LiveStreamSpec {
    /// Every problem with this spec for a stream called `name`, in field order; empty when it is valid.
    ///
    /// Checks what the schema of the CRD checks (so local mode behaves as a cluster would) and what a schema cannot:
    /// unique target names, URLs that parse, CIDR blocks that parse.
    public func validate(name: String) -> [FieldError] {
        var errors: [FieldError] = []
        func fail(_ field: String, _ message: String) {
            errors.append(FieldError(field: field, message: message))
        }

        if let problem = Self.dnsLabelProblem(name, maxLength: LiveStreamLimits.maxNameLength) {
            fail("metadata.name", problem)
        }

        let app = self.ingest.app
        if app.isEmpty || app.count > LiveStreamLimits.maxAppLength
            || !app.unicodeScalars.allSatisfy({ Self.isAppCharacter($0) })
        {
            fail(
                "spec.ingest.app",
                "must be 1 to \(LiveStreamLimits.maxAppLength) characters of letters, digits, '.', '_' and '-', got \"\(app)\""
            )
        }
        if let ref = self.ingest.streamKeySecretRef {
            Self.validate(ref, field: "spec.ingest.streamKeySecretRef", fail: fail)
        }
        if !(0...65535).contains(self.ingest.port) {
            fail("spec.ingest.port", "must be 0 (allocate) or a port from 1 to 65535, got \(self.ingest.port)")
        }
        if self.ingest.allowedSourceRanges.isEmpty {
            fail("spec.ingest.allowedSourceRanges", "must list at least one range; 0.0.0.0/0 and ::/0 allow everyone")
        } else if self.ingest.allowedSourceRanges.count > LiveStreamLimits.maxSourceRanges {
            fail("spec.ingest.allowedSourceRanges", "at most \(LiveStreamLimits.maxSourceRanges) ranges")
        }
        for (index, range) in self.ingest.allowedSourceRanges.enumerated() {
            do {
                _ = try IPRange(range)
            } catch {
                fail("spec.ingest.allowedSourceRanges[\(index)]", error.reason + " (\"\(range)\")")
            }
        }
        if let webhook = self.ingest.webhook {
            if let problem = Self.urlProblem(webhook.url, schemes: ["http", "https"]) {
                fail("spec.ingest.webhook.url", problem)
            }
            if let timeout = webhook.timeoutSeconds, !(timeout > 0 && timeout <= 30) {
                fail("spec.ingest.webhook.timeoutSeconds", "must be more than 0 and at most 30, got \(timeout)")
            }
        }

        if self.targets.count > LiveStreamLimits.maxTargets {
            fail("spec.targets", "at most \(LiveStreamLimits.maxTargets) targets, got \(self.targets.count)")
        }
        var seen: [String: Int] = [:]
        for (index, target) in self.targets.enumerated() {
            let field = "spec.targets[\(index)]"
            if let problem = Self.dnsLabelProblem(target.name, maxLength: 63) {
                fail("\(field).name", problem)
            } else if let first = seen[target.name] {
                fail("\(field).name", "\"\(target.name)\" is already the name of spec.targets[\(first)]")
            } else {
                seen[target.name] = index
            }
            if let problem = Self.urlProblem(target.url, schemes: ["rtmp", "rtmps"]) {
                fail("\(field).url", problem)
            }
            if let ref = target.streamKeySecretRef {
                Self.validate(ref, field: "\(field).streamKeySecretRef", fail: fail)
            }
        }

        if !(0...1).contains(self.scaling.minReplicas) {
            fail(
                "spec.scaling.minReplicas",
                "must be 0 (scale to zero when idle) or 1 (always on), got \(self.scaling.minReplicas)"
            )
        }
        if !(1...LiveStreamLimits.maxIdleSeconds).contains(self.scaling.idleSeconds) {
            fail(
                "spec.scaling.idleSeconds",
                "must be from 1 to \(LiveStreamLimits.maxIdleSeconds), got \(self.scaling.idleSeconds)"
            )
        }
        if let interval = self.rules?.maxKeyframeIntervalSeconds, !(interval > 0 && interval <= 60) {
            fail("spec.rules.maxKeyframeIntervalSeconds", "must be more than 0 and at most 60, got \(interval)")
        }
        return errors
    }

    private static func validate(
        _ ref: SecretKeySelector,
        field: String,
        fail: (String, String) -> Void
    ) {
        if Self.dnsSubdomainProblem(ref.name) != nil {
            fail("\(field).name", "must be a Secret name (lowercase letters, digits, '-' and '.'), got \"\(ref.name)\"")
        }
        let keyCharacters = ref.key.unicodeScalars.allSatisfy { Self.isAppCharacter($0) }
        if ref.key.isEmpty || ref.key.count > 253 || !keyCharacters {
            fail("\(field).key", "must be a Secret key (letters, digits, '-', '_' and '.'), got \"\(ref.key)\"")
        }
    }

    private static func isAppCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": true
        default: false
        }
    }

    /// Why `text` is not an RFC 1123 DNS label of at most `maxLength` characters, or `nil` if it is one.
    public static func dnsLabelProblem(_ text: String, maxLength: Int) -> String? {
        guard !text.isEmpty, text.count <= maxLength else {
            return "must be 1 to \(maxLength) characters, got \(text.count)"
        }
        let scalars = Array(text.unicodeScalars)
        let allowed = scalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        guard allowed, scalars.first != "-", scalars.last != "-" else {
            return
                "must be lowercase letters, digits and '-', starting and ending with a letter or digit, got \"\(text)\""
        }
        return nil
    }

    static func dnsSubdomainProblem(_ text: String) -> String? {
        guard !text.isEmpty, text.count <= 253 else {
            return "must be 1 to 253 characters"
        }
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            if let problem = Self.dnsLabelProblem(String(label), maxLength: 63) {
                return problem
            }
        }
        return nil
    }

    private static func urlProblem(_ text: String, schemes: Set<String>) -> String? {
        let expected = schemes.sorted().map { "\($0)://" }.joined(separator: " or ")
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            schemes.contains(scheme)
        else {
            return "must be a URL starting with \(expected)"
        }
        guard let host = components.host, !host.isEmpty else {
            return "has no host"
        }
        if components.user != nil || components.password != nil {
            return "must not carry credentials; put keys in a Secret"
        }
        if let port = components.port, !(1...65535).contains(port) {
            return "port \(port) is out of range"
        }
        return nil
    }
}
