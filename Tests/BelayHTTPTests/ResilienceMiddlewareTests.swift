import AsyncHTTPClient
import Belay
import BelayHTTP
import BelayTestUpstream
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import OpenAPIRuntime
import Synchronization
import Testing

/// `ResilienceMiddleware` in front of a plain AsyncHTTPClient "transport" (what a generated
/// client's `next` is), against real test upstreams on 127.0.0.1.
@Suite(.timeLimit(.minutes(1))) struct ResilienceMiddlewareTests {
    typealias Next = @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)

    /// How many times `next` ran.
    final class Calls: Sendable {
        private let count = Mutex(0)
        func add() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }

    /// A transport as a generated client hands it to its middlewares: the request to `baseURL` +
    /// its path, over HTTP, its errors wrapped in `ClientError` as the runtime wraps them.
    static func transport(_ calls: Calls) -> Next {
        { request, body, baseURL in
            do {
                return try await send(request, body, baseURL, calls)
            } catch {
                throw ClientError(
                    operationID: "op",
                    operationInput: "",
                    request: request,
                    requestBody: nil,
                    baseURL: baseURL,
                    causeDescription: "Transport threw an error.",
                    underlyingError: error
                )
            }
        }
    }

    static func send(
        _ request: HTTPRequest,
        _ body: HTTPBody?,
        _ baseURL: URL,
        _ calls: Calls
    ) async throws -> (
        HTTPResponse, HTTPBody?
    ) {
        calls.add()
        var base = baseURL.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        var outbound = HTTPClientRequest(url: base + (request.path ?? "/"))
        outbound.method = .init(rawValue: request.method.rawValue)
        for field in request.headerFields { outbound.headers.add(name: field.name.rawName, value: field.value) }
        if let body {
            outbound.body = .bytes(ByteBuffer(bytes: try await [UInt8](collecting: body, upTo: 1 << 20)))
        }
        let response = try await HTTPClient.shared.execute(outbound, timeout: .seconds(10))
        var fields = HTTPFields()
        for header in response.headers {
            if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
        }
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (
            HTTPResponse(status: .init(code: Int(response.status.code)), headerFields: fields),
            HTTPBody(Array(bytes.readableBytesView))
        )
    }

    /// A policy with quick retries: the test waits milliseconds, not the defaults' seconds.
    static func policy(_ endpoints: [UpstreamEndpoint] = []) -> UpstreamPolicy {
        var policy = UpstreamPolicy(name: "pay", endpoints: endpoints)
        policy.retryBase = .milliseconds(1)
        policy.retryCap = .milliseconds(5)
        policy.retryBudget = 1
        // Generous deadlines: under a loaded test run a call on 127.0.0.1 can wait seconds for
        // a thread; the tests about deadlines set their own.
        policy.attemptTimeout = .seconds(60)
        policy.totalTimeout = .seconds(120)
        return policy
    }

    /// Runs `body` with `count` test upstreams serving on 127.0.0.1.
    static func withUpstreams(
        _ count: Int = 1,
        _ body: @Sendable ([TestUpstream]) async throws -> Void
    ) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let upstreams = (0..<count).map { _ in TestUpstream(logger: logger) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for upstream in upstreams { group.addTask { try await upstream.run() } }
            for upstream in upstreams { _ = await upstream.port() }
            defer { group.cancelAll() }
            try await body(upstreams)
        }
    }

    static func url(_ upstream: TestUpstream) async throws -> URL {
        try #require(URL(string: await upstream.baseURL()))
    }

    static func text(_ body: HTTPBody?) async throws -> String {
        guard let body else { return "" }
        return String(decoding: try await [UInt8](collecting: body, upTo: 1 << 20), as: UTF8.self)
    }

    @Test func aReadIsRetriedOnATransientAnswerAndTheOperationSeesTheSuccess() async throws {
        try await Self.withUpstreams { upstreams in
            let upstream = upstreams[0]
            upstream.setBehavior(UpstreamBehavior(statuses: [503, 502], status: 200, body: #"{"balance":7}"#))
            let middleware = try ResilienceMiddleware(policy: Self.policy())
            let calls = Calls()
            let (response, body) = try await middleware.intercept(
                HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/v1/balance?currency=EUR"),
                body: nil,
                baseURL: try await Self.url(upstream),
                operationID: "getBalance",
                next: Self.transport(calls)
            )
            #expect(response.status == .ok)
            #expect(try await Self.text(body) == #"{"balance":7}"#)
            #expect(calls.value == 3)
            #expect(upstream.requests.map(\.path) == Array(repeating: "/v1/balance?currency=EUR", count: 3))
        }
    }

    @Test func anUnsafeOperationIsNotRetriedWithoutIdempotencyKeys() async throws {
        try await Self.withUpstreams { upstreams in
            let upstream = upstreams[0]
            upstream.setBehavior(.always(503))
            let middleware = try ResilienceMiddleware(policy: Self.policy())
            let (response, _) = try await middleware.intercept(
                HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/v1/charges"),
                body: HTTPBody(#"{"amount":100}"#),
                baseURL: try await Self.url(upstream),
                operationID: "createCharge",
                next: Self.transport(Calls())
            )
            // The provider's answer is the operation's: sent once, never twice.
            #expect(response.status == .serviceUnavailable)
            #expect(upstream.requests.count == 1)
        }
    }

    @Test func anUnsafeOperationIsRetriedWithOneKeyAndItsBodyWhenTheProviderHonoursKeys() async throws {
        try await Self.withUpstreams { upstreams in
            let upstream = upstreams[0]
            upstream.setBehavior(UpstreamBehavior(statuses: [503], status: 201))
            var policy = Self.policy()
            policy.idempotencyHeader = "Idempotency-Key"
            let middleware = try ResilienceMiddleware(policy: policy)
            let (response, _) = try await middleware.intercept(
                HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/v1/charges"),
                body: HTTPBody(#"{"amount":100}"#),
                baseURL: try await Self.url(upstream),
                operationID: "createCharge",
                next: Self.transport(Calls())
            )
            #expect(response.status == .created)
            let requests = upstream.requests
            #expect(requests.count == 2)
            let keys = Set(requests.compactMap { $0.header("Idempotency-Key") })
            #expect(keys.count == 1 && requests.allSatisfy { $0.header("Idempotency-Key") != nil })
            #expect(requests.allSatisfy { $0.body == #"{"amount":100}"# })
        }
    }

    @Test func aRequestBodyOverTheLimitIsRefusedBeforeAnythingIsSent() async throws {
        try await Self.withUpstreams { upstreams in
            let middleware = try ResilienceMiddleware(policy: Self.policy(), maxRequestBody: 16)
            let calls = Calls()
            await #expect(throws: (any Error).self) {
                _ = try await middleware.intercept(
                    HTTPRequest(method: .put, scheme: nil, authority: nil, path: "/v1/charges/1"),
                    body: HTTPBody(String(repeating: "x", count: 17)),
                    baseURL: try await Self.url(upstreams[0]),
                    operationID: "putCharge",
                    next: Self.transport(calls)
                )
            }
            #expect(calls.value == 0 && upstreams[0].requests.isEmpty)
        }
    }

    @Test func thePolicysEndpointsAreFailedOverInOrderInsteadOfTheServerURL() async throws {
        try await Self.withUpstreams(2) { upstreams in
            let (down, backup) = (upstreams[0], upstreams[1])
            down.setBehavior(.down)
            backup.setBehavior(UpstreamBehavior(body: "ok"))
            var endpoints: [UpstreamEndpoint] = []
            for upstream in [down, backup] {
                let url = try #require(URL(string: "http://127.0.0.1:\(await upstream.port())"))
                endpoints.append(try #require(UpstreamEndpoint(url: url)))
            }
            let middleware = try ResilienceMiddleware(policy: Self.policy(endpoints))
            let (response, body) = try await middleware.intercept(
                HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/v1/ping"),
                body: nil,
                // Ignored: the policy lists its endpoints.
                baseURL: try #require(URL(string: "http://127.0.0.1:9/never")),
                operationID: "ping",
                next: Self.transport(Calls())
            )
            #expect(response.status == .ok)
            #expect(try await Self.text(body) == "ok")
            #expect(backup.requests.map(\.path) == ["/v1/ping"])
        }
    }

    @Test func anOpenBreakerRefusesWithoutCallingTheTransport() async throws {
        try await Self.withUpstreams { upstreams in
            let upstream = upstreams[0]
            upstream.setBehavior(.always(503))
            var policy = Self.policy()
            policy.maxAttempts = 1
            policy.circuitBreaker = .init(
                failureRatio: 0.5,
                minimumThroughput: 2,
                window: .seconds(60),
                breakDuration: .seconds(60)
            )
            let middleware = try ResilienceMiddleware(policy: policy)
            let calls = Calls()
            let base = try await Self.url(upstream)
            for _ in 0..<2 {
                let (response, _) = try await middleware.intercept(
                    HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/v1/quote"),
                    body: nil,
                    baseURL: base,
                    operationID: "quote",
                    next: Self.transport(calls)
                )
                #expect(response.status == .serviceUnavailable)
            }
            let refused = await #expect(throws: ResilienceError.self) {
                _ = try await middleware.intercept(
                    HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/v1/quote"),
                    body: nil,
                    baseURL: base,
                    operationID: "quote",
                    next: Self.transport(calls)
                )
            }
            #expect(refused?.code == .circuitOpen)
            #expect(calls.value == 2)
            #expect(try middleware.upstreamClient(for: base).breaker.state == .open)
        }
    }

    @Test func aSlowAnswerEndsAtTheAttemptDeadlineAndIsRetried() async throws {
        try await Self.withUpstreams { upstreams in
            let upstream = upstreams[0]
            upstream.setBehavior(UpstreamBehavior(hang: true), for: "/v1/slow")
            var policy = Self.policy()
            policy.attemptTimeout = .milliseconds(200)
            policy.totalTimeout = .seconds(30)
            policy.maxAttempts = 2
            let middleware = try ResilienceMiddleware(policy: policy)
            let calls = Calls()
            let failure = await #expect(throws: (any Error).self) {
                _ = try await middleware.intercept(
                    HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/v1/slow"),
                    body: nil,
                    baseURL: try await Self.url(upstream),
                    operationID: "slow",
                    next: Self.transport(calls)
                )
            }
            // Both attempts ran out of time: a timeout, after the second (counted as the transport
            // was called: on a busy machine the upstream may record the second one late).
            #expect((failure as? UpstreamFailure)?.kind == .timeout || (failure as? ResilienceError)?.code == .timeout)
            #expect(calls.value == 2)
        }
    }
}
