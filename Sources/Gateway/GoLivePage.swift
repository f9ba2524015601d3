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

import Hummingbird
import NIOCore

/// The go-live page: `GET /go-live/NAMESPACE/NAME` on the listener that serves WHIP, a plain ES module and CSS
/// (`Resources/`, embedded in the binary by SwiftPM like the console's) that publish the browser's camera and
/// microphone to `POST /whip/NAMESPACE/NAME` on the same origin. The stream key is typed into the page and kept in
/// its memory: it never goes into a URL, so the page's path names the stream only.
enum GoLivePage {
    static var html: [UInt8] { PackageResources.go_live_html }
    static var script: [UInt8] { PackageResources.go_live_js }
    static var style: [UInt8] { PackageResources.go_live_css }

    /// Scripts, styles and connections from this origin only, nothing inline, no frames; no form posts anywhere.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        + "media-src 'self' blob: mediastream:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static func addRoutes(to router: Router<GatewayHTTPContext>) {
        router.get("go-live/go-live.js") { _, _ in
            Self.asset(Self.script, type: "text/javascript; charset=utf-8")
        }
        router.get("go-live/go-live.css") { _, _ in Self.asset(Self.style, type: "text/css; charset=utf-8") }
        router.get("go-live/:namespace/:name") { _, _ in
            Self.asset(Self.html, type: "text/html; charset=utf-8")
        }
    }

    static func asset(_ bytes: [UInt8], type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        headers[HTTPFields.Element.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPFields.Element.Name("Referrer-Policy")!] = "no-referrer"
        // The page asks for the camera and microphone of this origin, nothing else.
        headers[HTTPFields.Element.Name("Permissions-Policy")!] = "camera=(self), microphone=(self)"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
