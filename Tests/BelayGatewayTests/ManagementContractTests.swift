import BelayHTTP
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import Yams

@testable import BelayGateway

/// The OpenAPI document against the code: the routes, the problem codes, the examples.
/// (openapi-spec-validator and schemathesis check it further, in scripts/check-contract.sh.)
@Suite struct ManagementContractTests {
    func document() throws -> [String: Any] {
        let yaml = String(decoding: ManagementContract.document, as: UTF8.self)
        return try #require(try Yams.load(yaml: yaml) as? [String: Any])
    }

    func operations(_ root: [String: Any]) -> [(String, [String: Any])] {
        let paths = root["paths"] as? [String: Any] ?? [:]
        return paths.sorted { $0.key < $1.key }.flatMap { path, item in
            (item as? [String: Any] ?? [:]).sorted { $0.key < $1.key }.compactMap { method, operation in
                (operation as? [String: Any]).map { ("\(method.uppercased()) \(path)", $0) }
            }
        }
    }

    @Test func theDocumentIsOpenAPI31AndTheFileTheBinaryServes() throws {
        let root = try document()
        #expect(root["openapi"] as? String == "3.1.0")
        let file = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/BelayGateway/Contract/openapi.yaml")
        #expect(try Data(contentsOf: file) == Data(ManagementContract.document))
    }

    @Test func itsProblemCodesAreTheContractsCodes() throws {
        let root = try document()
        let schemas = (root["components"] as? [String: Any])?["schemas"] as? [String: Any]
        let codes = (schemas?["ProblemCode"] as? [String: Any])?["enum"] as? [String]
        #expect(Set(codes ?? []) == Set((ProblemCode.all + [.configInvalid]).map(\.name)))
    }

    @Test func everyOperationIsNamedOnceAndSaysHowItIsAuthenticated() throws {
        let root = try document()
        let all = operations(root)
        #expect(all.count > 20)
        var ids: Set<String> = []
        for (name, operation) in all {
            let id = try #require(operation["operationId"] as? String, "\(name) has no operationId")
            #expect(ids.insert(id).inserted, "operationId \(id) is used twice")
            #expect(operation["summary"] is String, "\(name) has no summary")
            #expect((operation["tags"] as? [String])?.isEmpty == false, "\(name) has no tag")
            let security = operation["security"] as? [Any] ?? root["security"] as? [Any]
            #expect(security != nil, "\(name) says nothing of authentication")
            // An authenticated operation documents the refusals every such route can send.
            if let security, !security.isEmpty {
                let responses = operation["responses"] as? [String: Any] ?? [:]
                for status in ["401", "403", "429"] {
                    #expect(responses[status] != nil, "\(name) does not document its \(status)")
                }
            }
        }
    }

    @Test func everySchemaAndEverySuccessfulAnswerHasAnExample() throws {
        let root = try document()
        let schemas = (root["components"] as? [String: Any])?["schemas"] as? [String: Any] ?? [:]
        for (name, schema) in schemas {
            let schema = schema as? [String: Any] ?? [:]
            #expect(schema["example"] != nil || schema["examples"] != nil, "schema \(name) has no example")
        }
        for (name, operation) in operations(root) {
            let responses = operation["responses"] as? [String: Any] ?? [:]
            for (status, response) in responses where status.hasPrefix("2") {
                let content = (response as? [String: Any])?["content"] as? [String: Any] ?? [:]
                for (type, media) in content {
                    let media = media as? [String: Any] ?? [:]
                    let schema = media["schema"] as? [String: Any] ?? [:]
                    let hasExample =
                        media["example"] != nil || media["examples"] != nil || schema["example"] != nil
                        || schema["$ref"] != nil
                    #expect(hasExample, "\(name) \(status) \(type) has no example")
                }
            }
        }
    }

    @Test func aRouteAndTheDocumentThatDisagreeAreBothNamed() throws {
        let documented = try ManagementContract.operations()
        let served = documented.all.subtracting(documented.optional)
        // Exactly the document (its optional operations left out): no drift.
        try ManagementContract.check(served: Array(served))
        try ManagementContract.check(served: Array(documented.all))

        var drifted = Array(served.filter { $0.path != "/v1/openapi.yaml" })
        drifted.append(.init(method: "GET", path: "/v1/secrets"))
        let error = try #require(throws: ManagementContract.Drift.self) {
            try ManagementContract.check(served: drifted)
        }
        #expect(error.undocumented == [.init(method: "GET", path: "/v1/secrets")])
        #expect(error.unserved == [.init(method: "GET", path: "/v1/openapi.yaml")])
        #expect(error.description.contains("GET /v1/secrets is served but not in the document"))
        #expect(error.description.contains("GET /v1/openapi.yaml is in the document but no route serves it"))
    }

    @Test func theGatewayServesItToAnyone() async throws {
        let config = ConfigTemplate.custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              ops: { key_sha256: "\(sha256Hex("ops-key"))", scopes: ["admin"] }
            upstreams:
              pay: { endpoints: ["\(urls[0])"] }
            """
        }
        try await GatewayHarness.run(config: config) { gateway in
            let answer = try await gateway.send(.GET, "/v1/openapi.yaml")
            #expect(answer.status == 200)
            #expect(answer.header("Content-Type") == "application/yaml")
            #expect(answer.body == String(decoding: ManagementContract.document, as: UTF8.self))
            // Every other management route still asks for a key.
            #expect(try await gateway.send(.GET, "/v1/upstreams").status == 401)
        }
    }
}

@Suite struct DeprecationMiddlewareTests {
    /// The scope each route group requires is the document's `x-belay-scopes`: without a key
    /// the operation is 401 (with a challenge), with a key of another scope 403 naming the
    /// scopes, with a key of any one of them admitted; a refusal carries one request id.
    @Test func everyOperationAsksForTheScopesTheDocumentNames() async throws {
        let contract = ManagementContractTests()
        let root = try contract.document()
        var required: [(method: String, path: String, scopes: [String])] = []
        for (name, operation) in contract.operations(root) {
            let security = operation["security"] as? [Any] ?? root["security"] as? [Any] ?? []
            guard !security.isEmpty else { continue }
            let scopes = try #require(operation["x-belay-scopes"] as? [String], "\(name) names no x-belay-scopes")
            let parts = name.split(separator: " ", maxSplits: 1).map(String.init)
            required.append((parts[0], parts[1], scopes))
        }
        #expect(required.count >= 20)
        let operations = required
        let allScopes = Set(operations.flatMap(\.scopes)).sorted()
        let config = ConfigTemplate.custom { urls in
            var lines = [
                #"server: { listen: "127.0.0.1:0" }"#,
                "consumers:",
                #"  stranger: { key_sha256: "\#(sha256Hex("stranger-key"))", scopes: ["proxy:pay"] }"#,
            ]
            for scope in allScopes {
                let name = scope.replacingOccurrences(of: ":", with: "-")
                lines.append(#"  \#(name): { key_sha256: "\#(sha256Hex(scope + "-key"))", scopes: ["\#(scope)"] }"#)
            }
            lines += ["upstreams:", #"  pay: { endpoints: ["\#(urls[0])"] }"#]
            return lines.joined(separator: "\n")
        }
        try await GatewayHarness.run(config: config) { gateway in
            for (method, template, scopes) in operations {
                let path = template.replacingOccurrences(of: "{name}", with: "pay")
                    .replacingOccurrences(of: "{id}", with: "01936f3e-8c2a-7b4d-9e1f-2a3b4c5d6e7f")
                let verb = HTTPMethod(rawValue: method)
                let operation = "\(method) \(template)"

                let anonymous = try await gateway.send(verb, path)
                #expect(anonymous.status == 401, "\(operation) without a key")
                #expect(anonymous.header("WWW-Authenticate") != nil, "\(operation) 401 without a challenge")
                #expect(anonymous.code == "unauthorized")
                let id = anonymous.header("Belay-Request-Id")
                #expect(id != nil && anonymous.problem?["request_id"] as? String == id, "\(operation) request id")

                let stranger = try await gateway.send(verb, path, headers: [("Authorization", "Bearer stranger-key")])
                #expect(stranger.status == 403, "\(operation) with another scope")
                let detail = stranger.problem?["detail"] as? String ?? ""
                #expect(scopes.allSatisfy(detail.contains), "\(operation): \(detail)")

                for scope in scopes {
                    let admitted = try await gateway.send(
                        verb,
                        path,
                        headers: [("Authorization", "Bearer \(scope)-key")]
                    )
                    #expect(![401, 403].contains(admitted.status), "\(operation) refused \(scope): \(admitted.body)")
                }
            }
        }
    }

    @Test func anOperationOnItsWayOutSaysSinceWhenUntilWhenAndWhereToGo() async throws {
        let since = Date(timeIntervalSince1970: 1_688_169_599)
        let sunset = Date(timeIntervalSince1970: 1_735_689_600)  // 2025-01-01T00:00:00Z
        let middleware = DeprecationMiddleware<BasicRequestContext>(
            since: since,
            sunset: sunset,
            link: "https://belay.dev/docs/api-changes#v2"
        )
        let channel = EmbeddedChannel()
        let context = BasicRequestContext(source: .init(channel: channel, logger: Logger(label: "test")))
        let request = Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "x", path: "/v1/old"),
            body: .init(buffer: ByteBuffer())
        )
        let answered = try await middleware.handle(request, context: context) { _, _ in
            Response(status: .ok, headers: [.link: "</v1/old?page=2>; rel=\"next\""])
        }
        #expect(answered.status == .ok)
        #expect(answered.headers[.deprecation] == "@1688169599")
        #expect(answered.headers[.sunset] == "Wed, 01 Jan 2025 00:00:00 GMT")
        #expect(
            answered.headers[values: .link] == [
                "</v1/old?page=2>; rel=\"next\"", "<https://belay.dev/docs/api-changes#v2>; rel=\"deprecation\"",
            ]
        )
        // A refusal the route throws carries them too.
        let refused = try await middleware.handle(request, context: context) { _, _ in
            throw HTTPError(.notFound)
        }
        #expect(refused.status == .notFound && refused.headers[.deprecation] == "@1688169599")
        _ = try? await channel.close()
    }
}

@Suite struct RFC3339Tests {
    @Test func takesEveryFormRFC3339AllowsAndNothingElse() {
        let moment = Date(timeIntervalSince1970: 1_795_428_000)  // 2026-11-23T10:00:00Z
        #expect(RFC3339.date("2026-11-23T10:00:00Z") == moment)
        #expect(RFC3339.date("2026-11-23t10:00:00z") == moment)
        #expect(RFC3339.date("2026-11-23T11:00:00+01:00") == moment)
        #expect(RFC3339.date("2026-11-23T10:00:00.250Z") == moment.addingTimeInterval(0.25))
        #expect(RFC3339.date("2028-02-29T00:00:00Z") != nil)
        for invalid in [
            "2026-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z",
            "2026-11-23T24:00:00Z", "2026-11-23T10:60:00Z", "2026-11-23T10:00:60Z", "2026-11-23T10:00:00",
            "2026-11-23T10:00:00Zjunk", "2026-11-23T10:00:00.Z", "2026-11-23T10:00:00+0100", "2026-11-23 10:00:00Z",
            "26-11-23T10:00:00Z", "", "2026-11-23",
        ] {
            #expect(RFC3339.date(invalid) == nil, "\(invalid)")
        }
    }
}
