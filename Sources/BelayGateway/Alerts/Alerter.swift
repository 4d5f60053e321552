import AsyncHTTPClient
import Belay
public import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import ServiceLifecycle
import Synchronization

/// Posts alerts to sinks; returns the HTTP status.
public protocol AlertTransport: Sendable {
    /// Sends `body` to `url` as JSON; throws if no answer came.
    func post(_ body: Data, to url: String) async throws -> Int
    /// Sends `request` (its headers too); throws if no answer came. The default posts the
    /// body with ``post(_:to:)``, without the extra headers.
    func send(_ request: AlertRequest) async throws -> Int
}

extension AlertTransport {
    public func send(_ request: AlertRequest) async throws -> Int {
        try await post(request.body, to: request.url)
    }
}

/// Posts with AsyncHTTPClient's shared client, 10 s per try.
public struct HTTPAlertTransport: AlertTransport {
    /// Creates the transport.
    public init() {}

    public func post(_ body: Data, to url: String) async throws -> Int {
        try await send(AlertRequest(url: url, body: body))
    }

    public func send(_ alert: AlertRequest) async throws -> Int {
        var request = HTTPClientRequest(url: alert.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "belay/\(BelayGateway.version)")
        for header in alert.headers { request.headers.add(name: header.name, value: header.value.value) }
        request.body = .bytes(ByteBuffer(bytes: alert.body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        _ = try? await response.body.collect(upTo: 64 << 10)
        return Int(response.status.code)
    }
}

/// An alert raised recently, and how often the same alert was raised again within the
/// throttle window.
public struct RecentAlert: Sendable {
    /// The alert as first raised.
    public var alert: Alert
    /// Times it was raised again since (not sent again: throttled).
    public var repeats: Int
    /// When it was last raised.
    public var lastAt: Date
}

/// Sends alerts to the configured sinks without ever blocking the caller.
///
/// ``raise(_:)`` only enqueues (a bounded buffer: in a storm the oldest unsent alerts are
/// dropped and counted). The service routes each alert with an ``AlertRouter`` (a sink's
/// `min_severity`, its `quiet_hours`, grouping per kind and upstream) and sends what it
/// decides in the sink's ``AlertRoute/Format``, retrying a sink that fails (2xx is success)
/// after 1 s and 5 s. An alert whose ``Alert/throttleKey`` was sent within the throttle window
/// (default 10 minutes) is not repeated, so one flapping delivery or upstream does not flood
/// anyone; a resolve is never throttled and lets its condition be raised again at once.
///
/// An alert whose ``Alert/resolvedKind`` is set is a resolve (``resolve(_:summary:at:)``
/// raises one): each sink that was sent the condition's trigger is sent its resolve when the
/// last open condition of the group clears; others are sent nothing.
public final class Alerter<C: Clock>: Service, Sendable where C.Duration == Duration {
    private struct State {
        var lastSent: [String: C.Instant] = [:]
        var suppressed = 0
        /// The last ``recentLimit`` alerts raised, oldest first.
        var recent: [RecentAlert] = []
        var router: AlertRouter
    }

    /// How many raised alerts ``recentAlerts`` keeps.
    public static var recentLimit: Int { 50 }

    /// The sink URLs.
    public var sinks: [String] { routes.map(\.url) }
    /// The sinks in force (a config reload may replace them: ``replace(routes:)``).
    public var routes: [AlertRoute] { state.withLock { $0.router.routes } }
    private let transport: any AlertTransport
    private let wall: WallClock<C>
    private let formatter: AlertFormatter
    private let throttle: Duration
    private let retryDelays: [Duration]
    private let tickEvery: Duration
    private let logger: Logger
    private let stream: AsyncStream<Alert>
    private let continuation: AsyncStream<Alert>.Continuation
    private let state: Mutex<State>

    /// Alerts as JSON to each of `sinks` (every severity, no quiet hours, no grouping).
    ///
    /// - Parameters:
    ///   - sinks: where alerts are POSTed; none means alerts are only logged.
    ///   - throttle: the window within which an alert with the same key is sent once.
    ///   - retryDelays: the waits before each retry of a failed sink.
    ///   - buffer: alerts held while sending; past it the oldest are dropped.
    public convenience init(
        sinks: [String],
        transport: any AlertTransport = HTTPAlertTransport(),
        clock: C,
        throttle: Duration = .seconds(600),
        retryDelays: [Duration] = [.seconds(1), .seconds(5)],
        buffer: Int = 1_000,
        logger: Logger
    ) {
        self.init(
            routes: sinks.map { AlertRoute(url: $0) },
            transport: transport,
            wall: WallClock(clock: clock),
            throttle: throttle,
            retryDelays: retryDelays,
            buffer: buffer,
            logger: logger
        )
    }

    /// Who hears every alert raised (``tap(_:)``).
    private let listeners = Mutex<[@Sendable (Alert) -> Void]>([])

    /// Alerts to each of `routes` in its format.
    ///
    /// - Parameters:
    ///   - routes: the sinks; none means alerts are only logged.
    ///   - wall: the date now (quiet hours are local times) and the clock slept on.
    ///   - source: who sends, as PagerDuty and Opsgenie show it (the instance name).
    ///   - throttle: the window within which an alert with the same key is sent once.
    ///   - retryDelays: the waits before each retry of a failed sink.
    ///   - tickEvery: the longest wait between looks for released warnings and group follow-ups.
    ///   - buffer: alerts held while sending; past it the oldest are dropped.
    public init(
        routes: [AlertRoute],
        transport: any AlertTransport = HTTPAlertTransport(),
        wall: WallClock<C>,
        source: String = "belay",
        throttle: Duration = .seconds(600),
        retryDelays: [Duration] = [.seconds(1), .seconds(5)],
        tickEvery: Duration = .seconds(15),
        buffer: Int = 1_000,
        logger: Logger
    ) {
        self.transport = transport
        self.wall = wall
        self.formatter = AlertFormatter(source: source)
        self.throttle = throttle
        self.retryDelays = retryDelays
        self.tickEvery = tickEvery
        self.logger = logger
        self.state = Mutex(State(router: AlertRouter(routes: routes)))
        (stream, continuation) = AsyncStream.makeStream(of: Alert.self, bufferingPolicy: .bufferingNewest(buffer))
    }

    /// Sends to `routes` from now on (a config reload): a sink that stays keeps its groups (a
    /// condition triggered before is resolved there) and its warnings held for quiet hours;
    /// alerts already on their way go where they were routed. Held warnings of a removed sink
    /// are dropped, and logged.
    public func replace(routes: [AlertRoute]) {
        let dropped = state.withLock { $0.router.replace(routes: routes) }
        if dropped > 0 {
            logger.notice(
                "warnings held for a removed alert sink's quiet hours were dropped",
                metadata: ["belay.alert.held": "\(dropped)"]
            )
        }
    }

    /// Tells `listener` of every alert raised from now on, on the raiser's task, before it is
    /// queued (the incident tracker's timeline). It must return at once.
    public func tap(_ listener: @escaping @Sendable (Alert) -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    /// Queues `alert` for sending; returns at once.
    public func raise(_ alert: Alert) {
        for listener in listeners.withLock({ $0 }) { listener(alert) }
        // As grave in the log as the alert is: a resolve, or an informational alert, is a notice.
        let level: Logger.Level =
            switch (alert.resolvedKind, alert.level) {
            case (.some, _), (nil, .info): .notice
            case (nil, .warning): .warning
            case (nil, .critical): .error
            }
        logger.log(
            level: level,
            "\(alert.summary)",
            metadata: [
                "belay.alert.kind": "\(alert.kind)",
                "belay.upstream": "\(alert.upstream ?? "")",
                "belay.alert.subject": "\(alert.subject ?? "")",
            ]
        )
        let window = throttle.inSeconds
        state.withLock { state in
            // A repeat within the throttle window is counted on the alert it repeats.
            if let index = state.recent.lastIndex(where: { $0.alert.throttleKey == alert.throttleKey }),
                alert.at.timeIntervalSince(state.recent[index].lastAt) < window
            {
                state.recent[index].repeats += 1
                state.recent[index].lastAt = alert.at
            } else {
                state.recent.append(RecentAlert(alert: alert, repeats: 0, lastAt: alert.at))
                if state.recent.count > Self.recentLimit { state.recent.removeFirst() }
            }
        }
        if case .dropped = continuation.yield(alert) {
            state.withLock { $0.suppressed += 1 }
        }
    }

    /// Queues the resolve of `condition` (its kind, upstream and subject as raised): sinks
    /// that were sent its trigger are sent a resolve once no condition of its group is open;
    /// a condition never raised here is not resolved anywhere. Returns at once.
    ///
    /// ```swift
    /// alerter.resolve(AlertCondition(kind: .stillTrying, upstream: "payments", subject: id),
    ///                 summary: "payments delivery \(id) delivered after 5 attempts", at: now)
    /// ```
    public func resolve(_ condition: AlertCondition, summary: String, at: Date) {
        raise(
            Alert(
                kind: Alert.Kind(rawValue: "\(condition.kind.rawValue).resolved"),
                severity: AlertSeverity.info.rawValue,
                summary: summary,
                upstream: condition.upstream,
                subject: condition.subject,
                at: at,
                resolves: condition.kind
            )
        )
    }

    /// The alerts raised recently (at most ``recentLimit``), the latest first; for the status page.
    public var recentAlerts: [RecentAlert] {
        state.withLock { $0.recent }.sorted { $0.lastAt > $1.lastAt }
    }

    /// Alerts not sent because they repeated a recent one or overflowed the buffer.
    public var suppressedCount: Int { state.withLock { $0.suppressed } }

    /// Warnings waiting at each sink for the end of its quiet hours.
    public var heldCount: Int {
        state.withLock { state in state.router.routes.indices.reduce(0) { $0 + state.router.held(at: $1).count } }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.tickUntilCancelled() }
                for await alert in self.stream {
                    await self.send(alert)
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
        let held = heldCount
        if held > 0 {
            logger.notice(
                "alerts waiting for the end of quiet hours were not sent: the alerter stopped",
                metadata: ["belay.alert.held": "\(held)"]
            )
        }
    }

    /// Sleeps until the router's next deadline (at most ``tickEvery``), then sends what is due.
    private func tickUntilCancelled() async {
        while !Task.isCancelled {
            let deadline = state.withLock { $0.router.nextDeadline }
            var wake = wall.clock.now.advanced(by: tickEvery)
            if let deadline { wake = min(wake, wall.instant(at: deadline)) }
            do { try await wall.clock.sleep(until: wake, tolerance: nil) } catch { return }
            await flush()
        }
    }

    /// Sends one alert to the sinks the router picks, unless it repeats one sent within the window.
    func send(_ alert: Alert) async {
        let now = wall.clock.now
        let date = wall.now()
        let dispatches = state.withLock { state -> [(AlertDispatch, AlertRoute)] in
            if alert.resolvedKind != nil {
                // Cleared: the next raise of the condition is news, not a repeat.
                state.lastSent[alert.condition.description] = nil
                return state.router.receive(alert, at: date).map { ($0, state.router.routes[$0.sink]) }
            }
            if let last = state.lastSent[alert.throttleKey], last.duration(to: now) < throttle {
                state.suppressed += 1
                return []
            }
            state.lastSent[alert.throttleKey] = now
            if state.lastSent.count > 10_000 {
                state.lastSent = state.lastSent.filter { $0.value.duration(to: now) < throttle }
            }
            return state.router.receive(alert, at: date).map { ($0, state.router.routes[$0.sink]) }
        }
        await deliver(dispatches)
    }

    /// Sends what the router has due now: warnings at the end of quiet hours, group follow-ups.
    func flush() async {
        let date = wall.now()
        await deliver(
            state.withLock { state in state.router.tick(at: date).map { ($0, state.router.routes[$0.sink]) } }
        )
    }

    /// Posts each dispatch to its sink (resolved with the router's routes when it was decided).
    private func deliver(_ dispatches: [(AlertDispatch, AlertRoute)]) async {
        for (dispatch, route) in dispatches {
            await post(formatter.request(for: dispatch, route: route), to: route, kind: dispatch.alert.kind)
        }
    }

    private func post(_ request: AlertRequest, to route: AlertRoute, kind: Alert.Kind) async {
        var lastProblem = ""
        for attempt in 0...retryDelays.count {
            if attempt > 0 {
                do { try await wall.clock.sleep(for: retryDelays[attempt - 1]) } catch { return }
            }
            do {
                let status = try await transport.send(request)
                if (200..<300).contains(status) { return }
                lastProblem = "HTTP \(status)"
            } catch {
                lastProblem = "\(type(of: error))"
            }
        }
        // The host only: a Slack webhook's path, and every key, is a secret.
        logger.error(
            "an alert could not be delivered to its sink",
            metadata: [
                "belay.alert.kind": "\(kind)", "belay.alert.sink": "\(route.host)",
                "belay.alert.format": "\(route.format.rawValue)", "belay.error": "\(lastProblem)",
            ]
        )
    }
}
