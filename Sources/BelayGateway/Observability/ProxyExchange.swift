public import Belay
public import BelayHTTP
public import Foundation

/// What the gateway observed of one proxied request that named a configured upstream: the
/// one record metrics, the audit trail and the health model are all fed from.
///
/// Made once per request, after the answer's head is ready (a streamed answer's body may
/// still be on its way), and handed to every ``ProxyObserver`` on the request's task.
public struct ProxyExchange: Sendable {
    /// The request's id (`Belay-Request-Id`), shared with logs, spans and the audit trail.
    public var requestID: String
    /// The upstream's configured name.
    public var upstream: String
    /// The consumer that called, if consumers are configured.
    public var consumer: String?
    /// The request's method, e.g. `GET`.
    public var method: String
    /// The path forwarded to the upstream (never a metric label: unbounded).
    public var path: String
    /// When the gateway received the request.
    public var receivedAt: Date
    /// How long the gateway took until the answer's head was ready.
    public var duration: Duration
    /// The status sent to the caller.
    public var status: Int
    /// The problem Belay answered with, if it answered with one rather than the upstream's answer.
    public var problem: ProblemCode?
    /// Set when the answer came from the stale-if-error cache: its age.
    public var staleAge: Duration?
    /// Whether the answer was the upstream's configured fallback (`criticality: optional`):
    /// the call failed and nothing stale was cached.
    public var fallback = false
    /// The delivery a write was queued as (`degrade: { writes: queue }`), if it was: the
    /// upstream could not take it, and the caller was answered `202`.
    public var queued: String?
    /// Whether that `202` was replayed for a caller's key already queued: the upstream was not
    /// called, and says nothing about it.
    public var replayed = false

    /// A write queued now because the upstream failed it (not a replay).
    var queuedByFailure: Bool { queued != nil && !replayed }
    /// Every attempt made, in order (none if the request was refused before any).
    public var attempts: [AttemptRecord]
    /// Every resilience decision taken for the request, in order.
    public var decisions: [ResilienceEvent]
    /// The caller's own `X-Request-Id`, if it sent a plain one (``requestID`` is always Belay's).
    public var correlationID: String?
    /// Whose doing it was when the call failed (``Fault``); nil when the upstream answered,
    /// or the answer was served stale. The health model skips ``Fault/caller``.
    public var fault: Fault?

    /// Creates an exchange.
    public init(
        requestID: String,
        upstream: String,
        consumer: String? = nil,
        method: String,
        path: String,
        receivedAt: Date,
        duration: Duration,
        status: Int,
        problem: ProblemCode? = nil,
        staleAge: Duration? = nil,
        attempts: [AttemptRecord] = [],
        decisions: [ResilienceEvent] = [],
        fault: Fault? = nil,
        correlationID: String? = nil
    ) {
        self.correlationID = correlationID
        self.fault = fault
        self.requestID = requestID
        self.upstream = upstream
        self.consumer = consumer
        self.method = method
        self.path = path
        self.receivedAt = receivedAt
        self.duration = duration
        self.status = status
        self.problem = problem
        self.staleAge = staleAge
        self.attempts = attempts
        self.decisions = decisions
    }

    /// The outcome in one bounded word, fit for a metric label: `success` (1xx–3xx from the
    /// upstream), `client_error` (4xx from it), `server_error` (5xx from it), `stale` (served
    /// from the stale-if-error cache), `fallback` (the configured fallback answered), or the
    /// problem's code (`circuit-open`, `timeout`, …).
    public var outcome: String {
        if staleAge != nil { return "stale" }
        if fallback { return "fallback" }
        if queued != nil { return "queued" }
        if let problem { return problem.name }
        switch status {
        case ..<400: return "success"
        case 400..<500: return "client_error"
        default: return "server_error"
        }
    }

    /// Every value ``outcome`` can take (e.g. to check a filter on it).
    public static let outcomes: Set<String> = Set(
        ["success", "client_error", "server_error", "stale", "fallback", "queued"] + ProblemCode.all.map(\.name)
    )
}

/// Receives every ``ProxyExchange``, on the request's task, before the answer is sent.
///
/// Like a ``ResilienceEventSink``, an observer must be cheap and must not block: count,
/// sample, or hand the exchange to a background writer, and return.
public protocol ProxyObserver: Sendable {
    /// Handles one exchange.
    func observe(_ exchange: ProxyExchange)
}
