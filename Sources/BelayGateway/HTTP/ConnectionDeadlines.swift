/// When one HTTP/1.1 connection has waited too long for its client, and for what: the
/// deadlines of `server.header_timeout`, `server.body_timeout` and `server.idle_timeout`.
///
/// A pure state machine fed with what happened and when (``ConnectionGuard`` feeds it from the
/// channel), so that it can be tested on a manual clock:
///
/// - the head of the first request must arrive whole within the header timeout of the
///   connection's opening; that of each later request within the header timeout of its first
///   byte;
/// - a body must arrive whole within the body timeout of the end of its head;
/// - a connection with no request in progress (nothing received since the last answer ended)
///   is idle, and may stay so for the idle timeout.
///
/// While the gateway answers (a request read whole, its answer not yet written) nothing is
/// timed here: the upstream's policy bounds that. A pipelined request's head or body is timed
/// only once the answers before it are written (until then the gateway is not reading it).
///
/// ```swift
/// var deadlines = ConnectionDeadlines(timeouts: timeouts, openedAt: clock.now)
/// deadlines.headRead(at: clock.now)
/// deadlines.expiry(at: clock.now)   // .body once the body timeout has passed
/// ```
struct ConnectionDeadlines<Instant: InstantProtocol> where Instant.Duration == Duration {
    /// The three bounds.
    struct Timeouts: Sendable, Hashable {
        var header: Duration
        var body: Duration
        var idle: Duration

        /// The bounds `server` configures.
        init(_ server: GatewayConfig.Server) {
            self.init(header: server.headerTimeout, body: server.bodyTimeout, idle: server.idleTimeout)
        }

        init(header: Duration, body: Duration, idle: Duration) {
            self.header = header
            self.body = body
            self.idle = idle
        }
    }

    /// What the client took too long to do.
    enum Expiry: Sendable, Hashable {
        /// Send a request's head.
        case header
        /// Send a request's body.
        case body
        /// Send a next request on an idle keep-alive connection.
        case idle
    }

    let timeouts: Timeouts
    /// Requests whose head was read and whose answer has not ended.
    private(set) var owed = 0
    /// Whether a request's body is being read (its head read, its end not yet).
    private(set) var readingBody = false
    /// When the body being read became the one the gateway reads.
    private var bodySince: Instant
    /// When the head being read began (nil: none is); the connection's opening for the first.
    private var headSince: Instant?
    /// When the connection last had nothing in progress.
    private var quietSince: Instant

    /// A connection opened at `openedAt`, waiting for its first request's head.
    init(timeouts: Timeouts, openedAt: Instant) {
        self.timeouts = timeouts
        self.bodySince = openedAt
        self.headSince = openedAt
        self.quietSince = openedAt
    }

    /// Bytes arrived: outside a body, they begin a head (if one is not begun already).
    mutating func received(at now: Instant) {
        if !readingBody && headSince == nil { headSince = now }
    }

    /// A request's head was read whole.
    mutating func headRead(at now: Instant) {
        headSince = nil
        readingBody = true
        bodySince = now
        owed += 1
    }

    /// A request's body was read whole.
    mutating func endRead(at now: Instant) {
        readingBody = false
        if owed == 0 { quietSince = now }
    }

    /// The answer to the oldest request owed was written whole.
    mutating func answerEnded(at now: Instant) {
        guard owed > 0 else { return }
        owed -= 1
        if owed == 0 {
            quietSince = now
            // A pipelined head is read from now on.
            if let since = headSince { headSince = max(since, now) }
        } else if owed == 1 && readingBody {
            // A pipelined body is read from now on.
            bodySince = max(bodySince, now)
        }
    }

    /// The next deadline and what passing it would mean; nil while the gateway answers.
    var deadline: (at: Instant, expiry: Expiry)? {
        if readingBody && owed <= 1 { return (bodySince.advanced(by: timeouts.body), .body) }
        guard owed == 0 else { return nil }
        if let since = headSince { return (since.advanced(by: timeouts.header), .header) }
        return (quietSince.advanced(by: timeouts.idle), .idle)
    }

    /// What has expired at `now`, if anything.
    func expiry(at now: Instant) -> Expiry? {
        guard let deadline, now >= deadline.at else { return nil }
        return deadline.expiry
    }
}
