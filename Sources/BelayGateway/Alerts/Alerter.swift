import AsyncHTTPClient
import Belay
public import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import ServiceLifecycle
import Synchronization

/// Posts an alert's JSON to one sink URL; returns the HTTP status.
public protocol AlertTransport: Sendable {
    /// Sends `body` to `url`; throws if no answer came.
    func post(_ body: Data, to url: String) async throws -> Int
}

/// Posts with AsyncHTTPClient's shared client, 10 s per try.
public struct HTTPAlertTransport: AlertTransport {
    /// Creates the transport.
    public init() {}

    public func post(_ body: Data, to url: String) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "belay/\(BelayGateway.version)")
        request.body = .bytes(ByteBuffer(bytes: body))
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
/// dropped and counted). The service sends each alert to every sink, retrying a sink
/// that fails (2xx is success) after 1 s and 5 s; and an alert whose ``Alert/throttleKey``
/// was sent within the throttle window (default 10 minutes) is not repeated, so one
/// flapping delivery or upstream does not flood anyone.
public final class Alerter<C: Clock>: Service, Sendable where C.Duration == Duration {
    private struct State {
        var lastSent: [String: C.Instant] = [:]
        var suppressed = 0
        /// The last ``recentLimit`` alerts raised, oldest first.
        var recent: [RecentAlert] = []
    }

    /// How many raised alerts ``recentAlerts`` keeps.
    public static var recentLimit: Int { 50 }

    /// The sink URLs.
    public let sinks: [String]
    private let transport: any AlertTransport
    private let clock: C
    private let throttle: Duration
    private let retryDelays: [Duration]
    private let logger: Logger
    private let stream: AsyncStream<Alert>
    private let continuation: AsyncStream<Alert>.Continuation
    private let state = Mutex(State())

    /// - Parameters:
    ///   - sinks: where alerts are POSTed; none means alerts are only logged.
    ///   - throttle: the window within which an alert with the same key is sent once.
    ///   - retryDelays: the waits before each retry of a failed sink.
    ///   - buffer: alerts held while sending; past it the oldest are dropped.
    public init(
        sinks: [String],
        transport: any AlertTransport = HTTPAlertTransport(),
        clock: C,
        throttle: Duration = .seconds(600),
        retryDelays: [Duration] = [.seconds(1), .seconds(5)],
        buffer: Int = 1_000,
        logger: Logger
    ) {
        self.sinks = sinks
        self.transport = transport
        self.clock = clock
        self.throttle = throttle
        self.retryDelays = retryDelays
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: Alert.self, bufferingPolicy: .bufferingNewest(buffer))
    }

    /// Queues `alert` for sending; returns at once.
    public func raise(_ alert: Alert) {
        logger.warning(
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

    /// The alerts raised recently (at most ``recentLimit``), the latest first; for the status page.
    public var recentAlerts: [RecentAlert] {
        state.withLock { $0.recent }.sorted { $0.lastAt > $1.lastAt }
    }

    /// Alerts not sent because they repeated a recent one or overflowed the buffer.
    public var suppressedCount: Int { state.withLock { $0.suppressed } }

    public func run() async throws {
        await withGracefulShutdownHandler {
            for await alert in stream {
                await send(alert)
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
    }

    /// Sends one alert to every sink unless it repeats one sent within the window.
    func send(_ alert: Alert) async {
        let now = clock.now
        let fresh = state.withLock { state -> Bool in
            if let last = state.lastSent[alert.throttleKey], last.duration(to: now) < throttle {
                state.suppressed += 1
                return false
            }
            state.lastSent[alert.throttleKey] = now
            if state.lastSent.count > 10_000 {
                state.lastSent = state.lastSent.filter { $0.value.duration(to: now) < throttle }
            }
            return true
        }
        guard fresh else { return }
        let body = alert.json()
        for sink in sinks {
            await post(body, to: sink, kind: alert.kind)
        }
    }

    private func post(_ body: Data, to sink: String, kind: Alert.Kind) async {
        var lastProblem = ""
        for attempt in 0...retryDelays.count {
            if attempt > 0 {
                do { try await clock.sleep(for: retryDelays[attempt - 1]) } catch { return }
            }
            do {
                let status = try await transport.post(body, to: sink)
                if (200..<300).contains(status) { return }
                lastProblem = "HTTP \(status)"
            } catch {
                lastProblem = "\(type(of: error))"
            }
        }
        logger.error(
            "an alert could not be delivered to its sink",
            metadata: [
                "belay.alert.kind": "\(kind)", "belay.alert.sink": "\(URL(string: sink)?.host ?? "?")",
                "belay.error": "\(lastProblem)",
            ]
        )
    }
}
