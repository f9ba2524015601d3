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

/// The single-page app, as committed under `Resources/` (plain ES module, CSS, HTML) and embedded in the binary by
/// SwiftPM (`.embedInCode`): no file to install beside it, no CDN, no build step.
enum ConsoleAssets {
    static var indexHTML: [UInt8] { PackageResources.index_html }
    static var appJS: [UInt8] { PackageResources.app_js }
    static var appCSS: [UInt8] { PackageResources.app_css }
}
