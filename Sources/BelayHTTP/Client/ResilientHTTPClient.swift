import AsyncHTTPClient
public import Belay
import Foundation
public import HTTPTypes
public import NIOCore

/// A resilient HTTP client for Swift applications: AsyncHTTPClient under an ``UpstreamPolicy``,
/// the same model and defaults the gateway reads from `belay.yaml` (`upstreams.<name>`), with
/// its deadlines, transient-only retries under a budget, circuit breaker, bulkhead, rate limit,
/// failover with outlier ejection, stale-if-error cache and fallback, idempotency keys for
/// unsafe methods when the provider honours them, and events.
///
/// ```swift
/// let payments = try ResilientHTTPClient(policy: .init(name: "payments", endpoints: [.init(url: url)!]))
/// let answer = try await payments.execute(HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/v1/balance"))
/// print(answer.status, String(buffer: answer.body))
/// try await payments.shutdown()
/// ```
///
/// An answer, whatever its status (a 503 after every attempt too), is returned with its body
/// in memory; a call that got none — refused by the policy (open breaker, full bulkhead, spent
/// budget, deadline) or unanswered (connect, reset, timeout) — throws ``ResilientHTTPError``,
/// which names the contract's problem code, as the gateway would answer it.
public final class ResilientHTTPClient: Sendable {
    /// The upstream client: its breaker, budget and endpoint health, for an application to show.
    public let upstream: UpstreamClient

    /// Creates the client; throws if the policy's options are invalid.
    public init(policy: UpstreamPolicy, eventSink: (any ResilienceEventSink)? = nil) throws(ConfigurationError) {
        upstream = try UpstreamClient(policy: policy, eventSink: eventSink)
    }

    /// What came back: the final answer and how Belay got it.
    public struct Answer: Sendable {
        /// The answer's status.
        public var status: HTTPResponse.Status
        /// Its headers.
        public var headerFields: HTTPFields
        /// Its body, read into memory.
        public var body: ByteBuffer
        /// Attempts made (1: answered at once).
        public var attempts: Int
        /// The endpoint that answered.
        public var endpoint: UpstreamEndpoint
        /// How old the answer is, when it came from the stale-if-error cache.
        public var staleAge: Duration?
        /// Whether it is the policy's fallback (``UpstreamPolicy/fallback``), not the upstream's.
        public var isFallback: Bool
    }

    /// Sends `request` — its path and query below the policy's base URLs, e.g. `/v1/balance?x=1`;
    /// `scheme` and `authority` are ignored — through the policy and returns the answer, its body
    /// read into memory up to `maxBody` bytes (default 10 MiB; a larger one fails the call).
    ///
    /// `idempotencyKey` (or the request's `Idempotency-Key` header) is the key every attempt of
    /// an unsafe call carries when the provider honours keys; one is made when there is none.
    public func execute(
        _ request: HTTPRequest,
        body: ByteBuffer? = nil,
        idempotencyKey: String? = nil,
        maxBody: Int = 10 << 20
    ) async throws(ResilientHTTPError) -> Answer {
        let (path, query) = UpstreamRequest.pathAndQuery(of: request.path ?? "/")
        let result = await upstream.send(
            UpstreamRequest(
                method: request.method,
                path: path,
                query: query,
                headers: request.headerFields,
                body: body.map { .buffered($0) } ?? .none
            ),
            correlationID: nil,
            idempotencyKey: idempotencyKey
        )
        let response: UpstreamResponse
        switch result.outcome {
        case .success(let answer): response = answer
        case .failure(let error):
            throw ResilientHTTPError(error, upstream: upstream.policy.name, attempts: result.attempts.count)
        }
        let bytes: ByteBuffer
        switch response.body {
        case .buffered(let held): bytes = held
        case .stream(let stream):
            do {
                bytes = try await stream.collect(upTo: maxBody)
            } catch {
                throw ResilientHTTPError(
                    UpstreamFailure(
                        kind: .other,
                        endpoint: response.endpoint,
                        detail: "the answer's body is larger than \(maxBody) bytes, or ended early"
                    ),
                    upstream: upstream.policy.name,
                    attempts: result.attempts.count
                )
            }
        }
        return Answer(
            status: response.status,
            headerFields: response.headers,
            body: bytes,
            attempts: result.attempts.count,
            endpoint: response.endpoint,
            staleAge: result.staleAge,
            isFallback: result.fallback
        )
    }

    /// Closes the client's connections. Call it once, when the application stops.
    public func shutdown() async throws {
        try await upstream.shutdown()
    }
}

/// A call that got no answer: the contract's problem code (``ProblemCode``), a sentence that names
/// no secret, how long to wait before trying again, and the error underneath.
public struct ResilientHTTPError: Error, Sendable, CustomStringConvertible {
    /// The problem code, e.g. ``ProblemCode/circuitOpen`` or ``ProblemCode/timeout``.
    public var code: ProblemCode
    /// What happened, in words.
    public var detail: String
    /// When to try again, if the policy knows (an open breaker's remaining break, a quota's reset).
    public var retryAfter: Duration?
    /// The error underneath: a ``ResilienceError``, an ``UpstreamFailure``, or another.
    public var underlying: any Error
    /// The upstream called (the policy's name).
    public var upstream: String
    /// Attempts made before it failed (0: refused before any was sent).
    public var attempts: Int

    /// The error `error` of a call to `upstream` after `attempts` attempts comes to.
    public init(_ error: any Error, upstream: String, attempts: Int = 0) {
        let (code, detail, retryAfter) = UpstreamProblem.describe(error, upstream: upstream)
        self.code = code
        self.detail = detail
        self.retryAfter = retryAfter
        self.underlying = error
        self.upstream = upstream
        self.attempts = attempts
    }

    public var description: String { "\(code.name): \(detail)" }
}
