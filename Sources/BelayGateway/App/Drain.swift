import BelayHTTP
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// The graceful stop's first step: `/readyz` answers 503 while the listener still serves new
/// connections for `server.drain`, so that a load balancer notices and stops sending before
/// the listener closes (DESIGN.md, "Operating it").
///
/// A `Service` whose phases are `serving → draining(until:) → stopping`: on graceful
/// shutdown (SIGTERM) it turns `draining` at once, sleeps on its clock until the drain
/// period has passed, turns `stopping` and returns. Run it after the HTTP server's service
/// in one `ServiceGroup` (``buildApplication(config:logger:eventSink:observers:tracer:reload:onServerRunning:)``
/// does), so that the group, which stops its services in reverse, signals the server only
/// once the drain is over: the readiness check flips before the listener closes.
///
/// ```swift
/// let drain = Drain(period: config.server.drain, clock: ContinuousClock(), logger: logger)
/// router.get("readyz") { _, _ in drain.readiness(instance: config.server.instanceName) }
/// try await ServiceGroup(services: [app, drain], logger: logger).run()
/// ```
final class Drain<C: Clock>: Service, Sendable where C.Duration == Duration {
    /// Where the stop is.
    enum Phase: Sendable, Hashable {
        /// No stop asked for: ready.
        case serving
        /// Stopping: not ready, but the listener still accepts until the instant.
        case draining(until: C.Instant)
        /// The drain is over: the listener closes, requests in flight finish.
        case stopping
    }

    /// How long new connections are still served once the stop began.
    let period: Duration
    private let clock: C
    private let logger: Logger
    private let state = Mutex(Phase.serving)

    /// A drain of `period` (`server.drain`), timed on `clock`.
    init(period: Duration, clock: C, logger: Logger) {
        self.period = period
        self.clock = clock
        self.logger = logger
    }

    /// The phase now.
    var phase: Phase { state.withLock { $0 } }

    /// Whether the instance takes new work: only while `serving`.
    var isReady: Bool { phase == .serving }

    /// Begins the drain: `draining` until `period` from now. Returns the instant it ends;
    /// a drain already begun keeps its end, and one already over ends now.
    @discardableResult
    func begin() -> C.Instant {
        let now = clock.now
        return state.withLock { phase in
            switch phase {
            case .serving:
                let until = now.advanced(by: period)
                phase = .draining(until: until)
                return until
            case .draining(let until):
                return until
            case .stopping:
                return now
            }
        }
    }

    /// Ends the drain: `stopping`, whatever the phase.
    func finish() {
        state.withLock { $0 = .stopping }
    }

    /// Waits for graceful shutdown, drains for `period`, then returns. Cancelled before
    /// graceful shutdown, it turns `stopping` at once; cancelled while draining, it stops
    /// waiting.
    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            finish()
            return
        }
        let until = begin()
        logger.notice(
            "draining: /readyz answers 503, new connections are still served until the drain ends",
            metadata: ["belay.drain": .string("\(period)")]
        )
        try? await clock.sleep(until: until, tolerance: nil)
        finish()
        logger.notice("drained: the listener closes, requests in flight finish")
    }

    /// The answer of `GET /readyz`: `200 {"status":"ready"}` while serving; once the stop
    /// began, `503 draining` (`application/problem+json`) naming `instance`.
    func readiness(instance: String) -> Response {
        guard let problem = problem(instance: instance) else { return .json(Array(#"{"status":"ready"}"#.utf8)) }
        return .problem(problem)
    }

    /// Why the instance is not ready (`draining`, naming `instance`), or nil while serving.
    func problem(instance: String) -> ProblemDetails? {
        let detail: String
        switch phase {
        case .serving:
            return nil
        case .draining(let until):
            let left = clock.now.duration(to: until)
            detail =
                "instance '\(instance)' is stopping: it serves new connections for "
                + "\(max(0, left.wholeSecondsRoundedUp)) s more, then closes its listener; send new work elsewhere"
        case .stopping:
            detail = "instance '\(instance)' is stopping: its listener is closing; send new work elsewhere"
        }
        return ProblemDetails(.draining, detail: detail, requestID: Gateway.newRequestID(), instance: "/readyz")
    }
}

extension Service {
    /// This service, stopped only once `drain` is over: both run in one `ServiceGroup` where,
    /// on graceful shutdown, `drain` is signalled first and this service after it returns.
    /// Cancellation reaches both at once.
    func stoppedAfter<C: Clock>(_ drain: Drain<C>, logger: Logger) -> some Service {
        DrainedService(service: self, drain: drain, logger: logger)
    }
}

/// A service and the drain in front of its stop (``Service/stoppedAfter(_:logger:)``).
struct DrainedService<S: Service, C: Clock>: Service where C.Duration == Duration {
    let service: S
    let drain: Drain<C>
    let logger: Logger

    func run() async throws {
        // A group stops its services in reverse order, each once the one after it returned.
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: service), .init(service: drain)], logger: logger)
        )
        try await group.run()
    }
}
