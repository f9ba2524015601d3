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

/// What kube-apiserver's YAML reader refuses that Yams (libyaml) takes.
///
/// kube-apiserver converts a YAML body to JSON with `sigs.k8s.io/yaml`, which parses with its fork of go-yaml v2: a
/// YAML 1.1 parser. YAML 1.1's double-quoted scalars know fewer escapes than JSON strings (section 5.7 of the YAML
/// 1.1 specification): `\/`, which JSON allows and Foundation's `JSONEncoder` writes for every `/`, is not one of
/// them, and go-yaml refuses the whole body ("found unknown escape character"). libyaml took `\/` from YAML 1.2, so
/// parsing with Yams alone would accept a body a real server refuses. This check runs before Yams does.
///
/// Written by hand because no library here parses YAML the way go-yaml v2 does; it finds only double-quoted
/// scalars (skipping single-quoted ones, plain scalars and comments) and checks their escapes.
enum GoYAML {
    /// The characters that may follow a backslash in a YAML 1.1 double-quoted scalar, as go-yaml v2 takes them;
    /// a backslash before a line break folds the line.
    private static let escapes: Set<UInt8> = Set("0abt\tnvfre \"\\N_LPxuU\n\r".utf8)

    /// An escape go-yaml refuses, where it is (line and column from 1).
    struct UnknownEscape {
        var line: Int
        var column: Int
        var escape: String

        /// go-yaml v2's error (`parser.fail` in decode.go): `yaml: `, then `line N: ` unless the problem is on the
        /// first line (its 0-based mark is then 0, which go-yaml takes for "no line"), then the scanner's problem.
        var goYAMLMessage: String {
            "yaml: \(self.line > 1 ? "line \(self.line): " : "")found unknown escape character"
        }
    }

    /// The first escape go-yaml would refuse, or `nil`.
    static func unknownEscape(in text: String) -> UnknownEscape? {
        let bytes = Array(text.utf8)
        enum Context { case structure, plain, comment, singleQuoted, doubleQuoted }
        var context = Context.structure
        var line = 1
        var lineStart = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") {
                line += 1
                lineStart = index + 1
                if context == .comment || context == .plain { context = .structure }
                index += 1
                continue
            }
            switch context {
            case .comment:
                break
            case .doubleQuoted:
                if byte == UInt8(ascii: "\\") {
                    let next = index + 1 < bytes.count ? bytes[index + 1] : 0
                    guard Self.escapes.contains(next) else {
                        let shown = next == 0 ? "" : String(decoding: [next], as: UTF8.self)
                        return UnknownEscape(line: line, column: index - lineStart + 1, escape: "\\" + shown)
                    }
                    // An escaped line break still ends the line.
                    if next != UInt8(ascii: "\n") { index += 1 }
                } else if byte == UInt8(ascii: "\"") {
                    context = .plain
                }
            case .singleQuoted:
                if byte == UInt8(ascii: "'") {
                    if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "'") {
                        index += 1
                    } else {
                        context = .plain
                    }
                }
            case .structure:
                // Where a new node may start: after indentation or an indicator (`key: `, `- `, `[`, `{`, `,`).
                switch byte {
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ","),
                    UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":"):
                    break
                case UInt8(ascii: "\""): context = .doubleQuoted
                case UInt8(ascii: "'"): context = .singleQuoted
                case UInt8(ascii: "#"): context = .comment
                default: context = .plain
                }
            case .plain:
                // Inside a plain scalar (or after a quoted one): `: `, `, ` and brackets in flow open a new node.
                switch byte {
                case UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: "]"), UInt8(ascii: "}"):
                    context = .structure
                case UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: "?"):
                    let next = index + 1 < bytes.count ? bytes[index + 1] : UInt8(ascii: " ")
                    if next == UInt8(ascii: " ") || next == UInt8(ascii: "\t") || next == UInt8(ascii: "\n")
                        || next == UInt8(ascii: "\"")
                    {
                        context = .structure
                    }
                case UInt8(ascii: "#"):
                    if index > 0, bytes[index - 1] == UInt8(ascii: " ") || bytes[index - 1] == UInt8(ascii: "\t") {
                        context = .comment
                    }
                default:
                    break
                }
            }
            index += 1
        }
        return nil
    }
}

extension JSON {
    /// Parses a request body as kube-apiserver reads YAML (an apply body): what go-yaml v2 refuses is refused with
    /// the API server's message, then the text is parsed with Yams (libyaml, YAML 1.1).
    ///
    /// For tests that check a client never sends a body the API server would refuse.
    public init(kubeAPIServerYAML text: String) throws {
        if let unknown = GoYAML.unknownEscape(in: text) {
            throw KubernetesTestServerError.invalidManifest(
                "error converting YAML to JSON: \(unknown.goYAMLMessage) (\(unknown.escape) at line \(unknown.line), "
                    + "column \(unknown.column))"
            )
        }
        self = try JSON(yaml: text)
    }
}
