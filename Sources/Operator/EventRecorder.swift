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

import Foundation
import KubernetesClient
import LiveStreamModel
import Logging

/// Writes `events.k8s.io/v1` Events about LiveStreams, with the operator as `reportingController`: what a person
/// must know (a port given or taken back, a generated key, a refused spec). Never a key. Failures are logged, not
/// thrown: an event is not worth failing a reconcile for.
struct EventRecorder: Sendable {
    enum EventType: String, Sendable {
        case normal = "Normal"
        case warning = "Warning"
    }

    let client: KubernetesClient
    let controller: String
    let instance: String
    let logger: Logger

    func record(
        _ type: EventType,
        regarding stream: some KubernetesAPIObject,
        reason: String,
        action: String,
        note: String
    ) async {
        let name = stream.metadata.name ?? "livestream"
        let namespace = stream.metadata.namespace ?? "default"
        var suffix = ""
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2 {
            let word = String(generator.next() as UInt32, radix: 16)
            suffix += String(repeating: "0", count: 8 - word.count) + word
        }
        let event: JSONValue = [
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": ["name": .string("\(name).\(suffix)"), "namespace": .string(namespace)],
            "eventTime": .string(Timestamps.micro(Date())),
            "reportingController": .string(self.controller),
            "reportingInstance": .string(self.instance),
            "action": .string(action),
            "reason": .string(reason),
            "note": .string(String(note.prefix(1024))),
            "type": .string(type.rawValue),
            "regarding": [
                "apiVersion": .string(LiveStreamResource.apiVersion),
                "kind": .string(LiveStreamResource.kind),
                "name": .string(name),
                "namespace": .string(namespace),
                "uid": .string(stream.metadata.uid ?? ""),
                "resourceVersion": .string(stream.metadata.resourceVersion ?? ""),
            ],
        ]
        do {
            let object = try JSONValue.decode(KubernetesObject.self, from: event)
            _ = try await self.client.create(object, .events, namespace: namespace)
        } catch {
            self.logger.debug(
                "k8s event not recorded",
                metadata: ["k8s.reason": "\(reason)", "k8s.name": "\(namespace)/\(name)", "error": "\(error)"]
            )
        }
        self.logger.info(
            "\(note)",
            metadata: [
                "k8s.name": "\(namespace)/\(name)", "k8s.reason": "\(reason)", "k8s.event.type": "\(type.rawValue)",
            ]
        )
    }
}

enum Timestamps {
    /// RFC 3339 with seconds, UTC, as conditions and `creationTimestamp` write it.
    static func seconds(_ date: Date) -> String {
        let components = Self.components(date)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02dZ",
            components.year ?? 0,
            components.month ?? 0,
            components.day ?? 0,
            components.hour ?? 0,
            components.minute ?? 0,
            components.second ?? 0
        )
    }

    /// RFC 3339 with microseconds, UTC: a `MicroTime`.
    static func micro(_ date: Date) -> String {
        let components = Self.components(date)
        let micros = Int((date.timeIntervalSince1970 * 1_000_000).truncatingRemainder(dividingBy: 1_000_000))
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
            components.year ?? 0,
            components.month ?? 0,
            components.day ?? 0,
            components.hour ?? 0,
            components.minute ?? 0,
            components.second ?? 0,
            micros
        )
    }

    private static func components(_ date: Date) -> DateComponents {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    }
}

extension JSONValue {
    /// Decodes `value` as `T`, through JSON.
    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try JSONDecoder().decode(T.self, from: JSONEncoder().encode(value))
    }

    /// Encodes `value` as a JSON value.
    static func encode(_ value: some Encodable) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
    }
}
