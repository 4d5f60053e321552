import Belay
import BelayAPI
import BelayHTTP
public import BelayStore
public import Foundation
import HTTPTypes

/// Everything the status page shows at one moment.
struct StatusSnapshot: Sendable {
    /// One upstream: its health report and the client's live figures.
    struct Upstream: Sendable {
        var report: UpstreamHealthReport
        var live: UpstreamLiveState
        /// Each endpoint's base URL, in configured order.
        var endpointURLs: [String]
        var retryBudget: (requests: Int, retries: Int)
        var quotaPacing: Bool
        /// The adaptive concurrency limit now, for an upstream that has one.
        var concurrency: ConcurrencyState? = nil
        /// The failure drill in force on it, if any.
        var drill: DrillRecord? = nil
        /// The upstream's config in force, for its criticality and degradation.
        var config: UpstreamConfig? = nil
    }

    /// An adaptive concurrency limit at one moment.
    struct ConcurrencyState: Sendable {
        var limit: Int
        var inFlight: Int
        var queued: Int
        var rejected: Int
        var algorithm: String
        var minimum: Int
        var maximum: Int
        /// The gradient's round trip without load (its last measurement); nil for AIMD and
        /// before the first measurement ends.
        var minimumRTT: Duration?
        /// The limit and in-flight over recent time, oldest first, the last entry being now
        /// (the samples of ``ConcurrencyHistory`` and then the state above).
        var history: [ConcurrencyHistory<ContinuousClock>.Sample] = []
        /// The time between two samples of ``history`` (but its last).
        var historyEvery: Duration = .seconds(5)

        init(_ limiter: AdaptiveConcurrencyLimit<ContinuousClock>) {
            let now = limiter.snapshot
            limit = now.limit
            inFlight = now.inFlight
            queued = now.queued
            rejected = now.rejections
            algorithm = limiter.configuration.algorithm.name
            minimum = limiter.configuration.minimum
            maximum = limiter.configuration.maximum
            minimumRTT = limiter.minimumRoundTripTime
            history = [.init(limit: now.limit, inFlight: now.inFlight)]
        }

        /// This state with the samples `history` kept before it.
        func following(_ history: ConcurrencyHistory<ContinuousClock>?, upstream: String) -> Self {
            guard let history else { return self }
            var state = self
            state.history = history.series(upstream) + self.history
            state.historyEvery = history.every
            return state
        }
    }

    /// A webhook source and where it forwards.
    struct WebhookSource: Sendable {
        var name: String
        var scheme: String
        /// `host:port/path` of `forward_to` (never credentials), if it forwards.
        var forwardsTo: String?
    }

    var generatedAt: Date
    var upstreams: [Upstream]
    /// Deliveries by status; nil when the store could not be read.
    var deliveries: [DeliveryStatus: Int]?
    var webhooks: [WebhookSource]
    var alerts: [RecentAlert]
}

/// The health routes' behaviour: `/v1/upstreams[/{name}]`, `/v1/status` and the status page
/// `GET /`, all made from the health model's reports and each client's live state.
public final class StatusService: Sendable {
    let gateway: Gateway
    let health: UpstreamHealth<ContinuousClock>
    private let store: any DeliveryStore
    private let recentAlerts: @Sendable () -> [RecentAlert]
    private let now: @Sendable () -> Date
    private let concurrencyHistory: ConcurrencyHistory<ContinuousClock>?
    private let drill: @Sendable (String) -> DrillRecord?

    /// - Parameters:
    ///   - recentAlerts: the alerts raised recently, the latest first.
    ///   - concurrencyHistory: the recent samples of each adaptive concurrency limit, if kept.
    ///   - drill: the failure drill in force on an upstream, if any.
    ///   - now: the calendar time.
    public init(
        gateway: Gateway,
        health: UpstreamHealth<ContinuousClock>,
        store: any DeliveryStore,
        recentAlerts: @escaping @Sendable () -> [RecentAlert],
        concurrencyHistory: ConcurrencyHistory<ContinuousClock>? = nil,
        drill: @escaping @Sendable (String) -> DrillRecord? = { _ in nil },
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.drill = drill
        self.gateway = gateway
        self.health = health
        self.store = store
        self.recentAlerts = recentAlerts
        self.concurrencyHistory = concurrencyHistory
        self.now = now
    }

    /// The history of every adaptive concurrency limit of `gateway`, sampled every `every`.
    public static func concurrencyHistory(
        of gateway: Gateway,
        every: Duration = .seconds(5)
    ) -> ConcurrencyHistory<ContinuousClock> {
        // Each sample reads the client running now: a reload may have replaced it (its limit
        // starts again from `initial` then). An upstream given a limit by a reload is not drawn
        // until a restart.
        let clients = gateway.clients
        let sources = gateway.config.upstreams.compactMap { upstream -> ConcurrencyHistory<ContinuousClock>.Source? in
            guard clients[upstream.name]?.concurrencyLimit != nil else { return nil }
            let name = upstream.name
            return ConcurrencyHistory<ContinuousClock>.Source(upstream: name) {
                guard let now = gateway.clients[name]?.concurrencyLimit?.snapshot else {
                    return .init(limit: 0, inFlight: 0)
                }
                return .init(limit: now.limit, inFlight: now.inFlight)
            }
        }
        return ConcurrencyHistory(sources: sources, every: every, clock: ContinuousClock())
    }

    /// The live state of `client`: breaker, remaining break, endpoints and whether each is ejected.
    static func live(_ client: UpstreamClient) -> UpstreamLiveState {
        UpstreamLiveState(
            breaker: client.breaker.state,
            remainingBreak: client.breaker.remainingBreak,
            endpoints: client.policy.endpoints.enumerated().map { index, endpoint in
                (endpoint.description, client.isEjected(endpoint: index))
            }
        )
    }

    /// The upstream `name` now, or nil if none is configured by that name.
    func upstream(_ name: String) -> StatusSnapshot.Upstream? {
        guard let client = gateway.clients[name] else { return nil }
        let live = Self.live(client)
        guard let report = health.report(name, live: live) else { return nil }
        let usage = client.budget.usage
        return StatusSnapshot.Upstream(
            report: report,
            live: live,
            endpointURLs: client.policy.endpoints.map { $0.url(path: "", query: nil) },
            retryBudget: (usage.requests, usage.retries),
            quotaPacing: client.isPacingForQuota,
            concurrency: client.concurrencyLimit.map {
                StatusSnapshot.ConcurrencyState($0).following(concurrencyHistory, upstream: name)
            },
            drill: drill(name),
            config: gateway.config.upstream(named: name)
        )
    }

    /// Every upstream now, in configured order.
    func upstreams() -> [StatusSnapshot.Upstream] {
        gateway.config.upstreams.compactMap { upstream($0.name) }
    }

    /// Everything the status page shows, now.
    func snapshot() async -> StatusSnapshot {
        StatusSnapshot(
            generatedAt: now(),
            upstreams: upstreams(),
            deliveries: try? await store.counts(),
            webhooks: gateway.config.webhooks.map { source in
                StatusSnapshot.WebhookSource(
                    name: source.name,
                    scheme: source.scheme.rawValue,
                    forwardsTo: Gateway.forwardPolicy(for: source).map { policy in
                        let endpoint = policy.endpoints[0]
                        return "\(endpoint.description)\(endpoint.basePath)"
                    }
                )
            },
            alerts: recentAlerts()
        )
    }

    /// `GET /v1/upstreams`.
    func upstreamsAnswer() -> APIAnswer {
        // Breakers and health are this instance's own: the answer says which instance it is.
        .json(
            200,
            UpstreamList(instance: gateway.config.server.instanceName, upstreams: upstreams().map(StatusJSON.upstream))
        )
    }

    /// `GET /v1/upstreams/{name}`.
    func upstreamAnswer(_ name: String, requestID: String) -> APIAnswer {
        guard let upstream = upstream(name) else {
            return .problem(
                ProblemDetails(.notFound, detail: "no upstream named '\(name)' is configured", requestID: requestID)
            )
        }
        return .json(
            200,
            UpstreamDetail(instance: gateway.config.server.instanceName, upstream: StatusJSON.upstream(upstream))
        )
    }

    /// `GET /v1/status`: what the status page shows, as JSON.
    func statusAnswer() async -> APIAnswer {
        .json(200, StatusJSON.status(await snapshot()))
    }

    /// `GET /`: the status page, rendered now.
    func page() async -> String {
        StatusPage.render(await snapshot())
    }
}
