import Belay
import BelayHTTP
import BelayTestUpstream
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// `ResilientHTTPClient`: the gateway's policy inside an application, against real test
/// upstreams on 127.0.0.1.
@Suite(.timeLimit(.minutes(1))) struct ResilientHTTPClientTests {
    static func endpoint(_ upstream: TestUpstream) async throws -> UpstreamEndpoint {
        let url = try #require(URL(string: await upstream.baseURL()))
        return try #require(UpstreamEndpoint(url: url))
    }

    /// Runs `body` with a client over `endpoints` and shuts it down after.
    static func withClient(
        _ endpoints: [UpstreamEndpoint],
        _ configure: (inout UpstreamPolicy) -> Void = { _ in },
        _ body: (ResilientHTTPClient) async throws -> Void
    ) async throws {
        var policy = ResilienceMiddlewareTests.policy(endpoints)
        configure(&policy)
        let client = try ResilientHTTPClient(policy: policy)
        do {
            try await body(client)
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    static func get(_ path: String) -> HTTPRequest {
        HTTPRequest(method: .get, scheme: nil, authority: nil, path: path)
    }

    @Test func aReadIsRetriedAndTheAnswerSaysHowItWasGot() async throws {
        try await ResilienceMiddlewareTests.withUpstreams { upstreams in
            upstreams[0].setBehavior(UpstreamBehavior(statuses: [503, 503], status: 200, body: "fresh"))
            try await Self.withClient([try await Self.endpoint(upstreams[0])]) { client in
                let answer = try await client.execute(Self.get("/v1/rates?base=EUR"))
                #expect(answer.status == .ok)
                #expect(String(buffer: answer.body) == "fresh")
                #expect(answer.attempts == 3 && answer.staleAge == nil && !answer.isFallback)
                #expect(upstreams[0].requests.map(\.path).allSatisfy { $0 == "/v1/rates?base=EUR" })
            }
        }
    }

    @Test func aFailedReadIsAnsweredFromTheStaleCache() async throws {
        try await ResilienceMiddlewareTests.withUpstreams { upstreams in
            upstreams[0].setBehavior(UpstreamBehavior(body: #"{"EUR":1.08}"#))
            try await Self.withClient([try await Self.endpoint(upstreams[0])], { $0.staleIfError = .seconds(600) }) {
                client in
                _ = try await client.execute(Self.get("/v1/rates"))
                upstreams[0].setBehavior(.always(503))
                let answer = try await client.execute(Self.get("/v1/rates"))
                #expect(answer.status == .ok && String(buffer: answer.body) == #"{"EUR":1.08}"#)
                #expect(answer.staleAge != nil)
            }
        }
    }

    @Test func anUnreachableProviderThrowsTheContractsProblem() async throws {
        try await ResilienceMiddlewareTests.withUpstreams { upstreams in
            upstreams[0].setBehavior(.down)
            try await Self.withClient([try await Self.endpoint(upstreams[0])], { $0.maxAttempts = 2 }) { client in
                let error = await #expect(throws: ResilientHTTPError.self) {
                    _ = try await client.execute(Self.get("/v1/rates"))
                }
                #expect(error?.code == .upstreamUnreachable)
                #expect(error?.attempts == 2)
                #expect(error?.detail.hasPrefix("pay could not be reached") == true)
            }
        }
    }

    @Test func anOpenBreakerIsRefusedWithItsRetryAfterAndNothingIsSent() async throws {
        try await ResilienceMiddlewareTests.withUpstreams { upstreams in
            upstreams[0].setBehavior(.always(503))
            let configure: (inout UpstreamPolicy) -> Void = {
                $0.maxAttempts = 1
                $0.circuitBreaker = .init(
                    failureRatio: 0.5,
                    minimumThroughput: 2,
                    window: .seconds(60),
                    breakDuration: .seconds(60)
                )
            }
            try await Self.withClient([try await Self.endpoint(upstreams[0])], configure) { client in
                for _ in 0..<2 {
                    let answer = try await client.execute(Self.get("/v1/rates"))
                    #expect(answer.status == .serviceUnavailable)
                }
                let error = await #expect(throws: ResilientHTTPError.self) {
                    _ = try await client.execute(Self.get("/v1/rates"))
                }
                #expect(error?.code == .circuitOpen && error?.attempts == 0)
                #expect(error?.retryAfter != nil)
                #expect(upstreams[0].requests.count == 2)
            }
        }
    }

    @Test func anAnswerReadAndDroppedIsNeverServedStaleLater() async throws {
        try await ResilienceMiddlewareTests.withUpstreams { upstreams in
            upstreams[0].setBehavior(UpstreamBehavior(body: #"{"order":"there"}"#))
            try await Self.withClient([try await Self.endpoint(upstreams[0])], { $0.staleIfError = .seconds(600) }) {
                client in
                // A caller that drops the body (a delivery's lookup) keeps nothing to serve later.
                let looked = await client.upstream.send(
                    UpstreamRequest(method: .get, path: "/v1/orders/7"),
                    correlationID: nil,
                    servingStale: false,
                    answer: .discard
                )
                #expect((try? looked.outcome.get())?.status == .ok)
                upstreams[0].setBehavior(.always(503))
                let answer = try await client.execute(Self.get("/v1/orders/7"))
                #expect(answer.status == .serviceUnavailable && answer.staleAge == nil)
            }
        }
    }

    @Test func anAnswerLargerThanTheLimitFailsTheCallInsteadOfFillingMemory() async throws {
        try await ResilienceMiddlewareTests.withUpstreams { upstreams in
            upstreams[0].setBehavior(UpstreamBehavior(body: String(repeating: "x", count: 4_096)))
            try await Self.withClient([try await Self.endpoint(upstreams[0])]) { client in
                let error = await #expect(throws: ResilientHTTPError.self) {
                    _ = try await client.execute(Self.get("/v1/export"), maxBody: 1_024)
                }
                #expect(error?.detail.contains("larger than 1024 bytes") == true)
                #expect(error?.attempts == 1)
            }
        }
    }

    @Test func anUnsafeCallCarriesTheCallersKeyOnEveryAttempt() async throws {
        try await ResilienceMiddlewareTests.withUpstreams { upstreams in
            upstreams[0].setBehavior(UpstreamBehavior(statuses: [502], status: 201))
            try await Self.withClient(
                [try await Self.endpoint(upstreams[0])],
                { $0.idempotencyHeader = "Idempotency-Key" }
            ) {
                client in
                let answer = try await client.execute(
                    HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/v1/charges"),
                    body: ByteBuffer(string: #"{"amount":5}"#),
                    idempotencyKey: "charge-42"
                )
                #expect(answer.status == .created && answer.attempts == 2)
                #expect(upstreams[0].requests.map { $0.header("Idempotency-Key") } == ["charge-42", "charge-42"])
            }
        }
    }
}
