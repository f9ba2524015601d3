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

import KubernetesTestServer
import Testing

@Suite("Discovery", .timeLimit(.minutes(3)))
struct DiscoveryTests {
    @Test("version, core group and resource list")
    func core() async throws {
        try await withServer { _, client in
            let version = try await client.get("/version")
            #expect(version.body["major"] == "1")
            let api = try await client.get("/api")
            #expect(api.body["kind"] == "APIVersions")
            #expect(api.body["versions"] == ["v1"])
            let v1 = try await client.get("/api/v1")
            let names = v1.body["resources"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            for name in ["namespaces", "pods", "services", "secrets", "configmaps", "events", "serviceaccounts"] {
                #expect(names.contains(name), "\(name) missing")
            }
            let secrets = v1.body["resources"]?.arrayValue?.first { $0["name"] == "secrets" }
            #expect(secrets?["namespaced"] == true)
            #expect(secrets?["kind"] == "Secret")
            #expect(secrets?["verbs"]?.arrayValue?.contains("watch") == true)
        }
    }

    @Test("groups, apps/v1 with the scale and status subresources")
    func groups() async throws {
        try await withServer { _, client in
            let groups = try await client.get("/apis")
            #expect(groups.body["kind"] == "APIGroupList")
            let names = groups.body["groups"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            for group in [
                "apps", "networking.k8s.io", "coordination.k8s.io", "rbac.authorization.k8s.io", "apiextensions.k8s.io",
                "policy",
            ] {
                #expect(names.contains(group), "\(group) missing")
            }
            let apps = try await client.get("/apis/apps/v1")
            let resources = apps.body["resources"]?.arrayValue ?? []
            #expect(resources.contains { $0["name"] == "deployments/scale" && $0["kind"] == "Scale" })
            #expect(resources.contains { $0["name"] == "deployments/status" })
            #expect(resources.first { $0["name"] == "deployments" }?["shortNames"] == ["deploy"])
            #expect(try await client.get("/apis/nope.example.com/v1").status == 404)
        }
    }

    @Test("an installed CRD appears in discovery with its subresources")
    func crd() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            let groups = try await client.get("/apis")
            #expect(groups.body["groups"]?.arrayValue?.contains { $0["name"] == "example.com" } == true)
            let list = try await client.get("/apis/example.com/v1")
            let resources = list.body["resources"]?.arrayValue ?? []
            #expect(resources.first { $0["name"] == "widgets" }?["shortNames"] == ["wd"])
            #expect(resources.contains { $0["name"] == "widgets/status" })
            #expect(resources.contains { $0["name"] == "widgets/scale" })
            let crd = try await client.get(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
            )
            let established = crd.body[path: ["status", "conditions"]]?.arrayValue?.first {
                $0["type"] == "Established"
            }
            #expect(established?["status"] == "True")
        }
    }

    @Test("OpenAPI v3 advertises fieldValidation on PATCH, which kubectl checks before it applies")
    func openAPI() async throws {
        try await withServer { server, client in
            try server.installCRD(yaml: widgetCRD)
            let root = try await client.get("/openapi/v3")
            let url = root.body[path: ["paths", "apis/example.com/v1", "serverRelativeURL"]]?.stringValue
            #expect(url == "/openapi/v3/apis/example.com/v1")
            let document = try await client.get(url ?? "")
            let patch = document.body[path: [
                "paths", "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}", "patch",
            ]]
            #expect(patch?["x-kubernetes-group-version-kind"]?["kind"] == "Widget")
            #expect(patch?["parameters"]?.arrayValue?.contains { $0["name"] == "fieldValidation" } == true)
        }
    }
}
