import BelayGateway
import BelayTestUpstream
import Foundation
import NIOHTTP1
import Testing

/// Requests framed in ways RFC 9112 refuses, and clients too slow to finish one, over raw
/// sockets (an HTTP client would not send them).
@Suite(.timeLimit(.minutes(2))) struct HTTPFramingTests {
    /// A POST to the proxy with these header lines and this body, on a keep-alive connection.
    static func post(_ headerLines: [String], body: String) -> String {
        (["POST /proxy/pay/v1/charges HTTP/1.1", "Host: belay.test"] + headerLines).joined(separator: "\r\n")
            + "\r\n\r\n" + body
    }

    /// Checks `received` is a closing `400 invalid-request` naming `field`.
    static func expectRefusal(
        _ received: RawClient.Received,
        field: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(received.status == 400, "\(received.text)", sourceLocation: sourceLocation)
        #expect(received.header("Content-Type") == "application/problem+json", sourceLocation: sourceLocation)
        #expect(received.header("Connection") == "close", sourceLocation: sourceLocation)
        #expect(received.header("Belay-Request-Id") != nil, sourceLocation: sourceLocation)
        let problem = (try? JSONSerialization.jsonObject(with: Data(received.body.utf8))) as? [String: Any]
        #expect(problem?["code"] as? String == "invalid-request", sourceLocation: sourceLocation)
        #expect(problem?["field"] as? String == field, sourceLocation: sourceLocation)
        #expect(received.closed, "the connection stays open", sourceLocation: sourceLocation)
    }

    @Test(arguments: ["gzip", "xchunked", "chunked, gzip", "gzip, chunked", "chunked, chunked", "identity", "chunked;"])
    func aTransferCodingOtherThanChunkedAloneIsRefusedAndTheConnectionClosed(coding: String) async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let request = Self.post(["Transfer-Encoding: \(coding)"], body: "5\r\nhello\r\n0\r\n\r\n")
            let received = try await RawClient.exchange(port: gateway.port, [request])
            Self.expectRefusal(received, field: "Transfer-Encoding")
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func aSecondTransferEncodingLineIsRefusedToo() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let request = Self.post(
                ["Transfer-Encoding: chunked", "Transfer-Encoding: gzip"],
                body: "5\r\nhello\r\n0\r\n\r\n"
            )
            let received = try await RawClient.exchange(port: gateway.port, [request])
            Self.expectRefusal(received, field: "Transfer-Encoding")
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func chunkedAloneInAnyCaseIsForwarded() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let request = Self.post(
                ["Transfer-Encoding: Chunked", "Connection: close"],
                body: "5\r\nhello\r\n0\r\n\r\n"
            )
            let received = try await RawClient.exchange(port: gateway.port, [request])
            #expect(received.status == 200, "\(received.text)")
            #expect(gateway.upstreams[0].requests.first?.body == "hello")
        }
    }

    @Test func contentLengthWithTransferEncodingIsRefused() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let request = Self.post(
                ["Content-Length: 5", "Transfer-Encoding: chunked"],
                body: "5\r\nhello\r\n0\r\n\r\n"
            )
            let received = try await RawClient.exchange(port: gateway.port, [request])
            Self.expectRefusal(received, field: "Content-Length")
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test(arguments: [
        ["Content-Length: 5", "Content-Length: 6"], ["Content-Length: 5", "Content-Length: 5"],
        ["Content-Length: 5, 5"],
    ])
    func repeatedContentLengthsAreRefused(lines: [String]) async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let received = try await RawClient.exchange(port: gateway.port, [Self.post(lines, body: "hello!")])
            Self.expectRefusal(received, field: "Content-Length")
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func aHeadTheParserRefusesIsAProblemDocument() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let received = try await RawClient.exchange(
                port: gateway.port,
                ["GET /healthz HTTP/1.1\r\nHost: belay.test\r\nNo colon here\r\n\r\n"]
            )
            Self.expectRefusal(received, field: "headers")
        }
    }

    @Test func aMalformedChunkIsAProblemDocument() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let request = Self.post(["Transfer-Encoding: chunked"], body: "zz\r\nhello\r\n0\r\n\r\n")
            let received = try await RawClient.exchange(port: gateway.port, [request])
            Self.expectRefusal(received, field: "body")
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func aPipelinedRefusalFollowsTheAnswerBeforeIt() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let first = "GET /healthz HTTP/1.1\r\nHost: belay.test\r\n\r\n"
            let second = Self.post(["Transfer-Encoding: gzip"], body: "5\r\nhello\r\n0\r\n\r\n")
            let received = try await RawClient.exchange(port: gateway.port, [first + second])
            #expect(received.status == 200, "\(received.text)")
            let answers = received.text.components(separatedBy: "HTTP/1.1 ")
            #expect(answers.count == 3, "\(received.text)")
            #expect(answers.last?.hasPrefix("400 ") == true)
            #expect(answers.last?.contains(#""field":"Transfer-Encoding""#) == true)
            #expect(received.closed)
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func pipelinedRequestsOnOneConnectionAreAllAnswered() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let request = "GET /healthz HTTP/1.1\r\nHost: belay.test\r\n\r\n"
            let last = "GET /readyz HTTP/1.1\r\nHost: belay.test\r\nConnection: close\r\n\r\n"
            let received = try await RawClient.exchange(port: gateway.port, [request + request + last])
            #expect(received.text.components(separatedBy: "HTTP/1.1 200 ").count == 4, "\(received.text)")
            #expect(received.text.contains("ready"))
            #expect(received.closed)
        }
    }

    // MARK: slow clients

    @Test func aHeadThatNeverEndsIsClosedAfterTheHeaderTimeout() async throws {
        try await GatewayHarness.run(config: .pay(server: "header_timeout: 200ms")) { gateway in
            let received = try await RawClient.exchange(
                port: gateway.port,
                ["GET /healthz HTTP/1.1\r\nHost: belay.test\r\nX-Slow: "]
            )
            #expect(received.closed)
            #expect(received.status == nil, "\(received.text)")
        }
    }

    @Test func aConnectionThatSendsNothingIsClosedAfterTheHeaderTimeout() async throws {
        try await GatewayHarness.run(config: .pay(server: "header_timeout: 200ms")) { gateway in
            let received = try await RawClient.exchange(port: gateway.port, [])
            #expect(received.closed)
            #expect(received.text.isEmpty)
        }
    }

    @Test func anIdleKeepAliveConnectionIsClosedAfterTheIdleTimeout() async throws {
        try await GatewayHarness.run(config: .pay(server: "idle_timeout: 200ms")) { gateway in
            let received = try await RawClient.exchange(
                port: gateway.port,
                ["GET /healthz HTTP/1.1\r\nHost: belay.test\r\n\r\n"]
            )
            #expect(received.status == 200, "\(received.text)")
            #expect(received.closed)
        }
    }

    @Test func aBodyThatNeverEndsIsClosedAfterTheBodyTimeoutAndNotForwarded() async throws {
        try await GatewayHarness.run(config: .pay(server: "body_timeout: 200ms")) { gateway in
            let received = try await RawClient.exchange(
                port: gateway.port,
                [Self.post(["Content-Length: 100", "Content-Type: application/json"], body: #"{"partial"#)]
            )
            #expect(received.closed)
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func aDeliveryBodyThatNeverEndsIsNotQueued() async throws {
        try await GatewayHarness.run(config: .pay(server: "body_timeout: 200ms")) { gateway in
            let head = [
                "POST /v1/deliveries HTTP/1.1", "Host: belay.test", "Content-Type: application/json",
                "Idempotency-Key: slow-1", "Content-Length: 200",
            ]
            let received = try await RawClient.exchange(
                port: gateway.port,
                [head.joined(separator: "\r\n") + "\r\n\r\n" + #"{"upstream":"pay","method":"POST","path":"/v1/x"}"#]
            )
            #expect(received.closed)
            let list = try await gateway.send(.GET, "/v1/deliveries")
            #expect(list.status == 200)
            #expect(!list.body.contains("slow-1"))
            #expect(!list.body.contains("/v1/x"))
        }
    }
}
