import Belay
import BelayHTTP
import Foundation
import HTTPTypes
import Logging
import NIOCore

/// The health model of a gateway and what wires it in: the event sink and observer it adds,
/// the endpoint-change hooks on each client, and the prober. `buildApplication` calls it.
struct HealthMonitoring: Sendable {
    /// The health model.
    let health: UpstreamHealth<ContinuousClock>

    /// A health model for `config`'s upstreams, alerting through `alert`.
    init(config: GatewayConfig, alert: @escaping @Sendable (Alert) -> Void) {
        health = UpstreamHealth(
            upstreams: config.upstreams.map { upstream in
                let breaker = upstream.policy.circuitBreaker
                return UpstreamHealth.Subject(
                    name: upstream.name,
                    probe: upstream.probe,
                    breakerRule: "\(HealthWords.percent(breaker.failureRatio)) or more of at least "
                        + "\(breaker.minimumThroughput) calls in \(HealthWords.span(breaker.window)) fail",
                    slo: upstream.slo
                )
            },
            wall: .system(ContinuousClock()),
            alert: alert
        )
    }

    /// `other` (if any) and the health model, as one sink for the gateway's clients.
    func eventSink(with other: (any ResilienceEventSink)?) -> any ResilienceEventSink {
        other.map { MultiplexEventSink([health, $0]) } ?? health
    }

    /// Hooks each of `gateway`'s upstream clients to the model (endpoint ejections) and
    /// returns the prober of the upstreams that configure a `probe`.
    func attach(to gateway: Gateway, logger: Logger) -> Prober<ContinuousClock> {
        for upstream in gateway.config.upstreams {
            guard let client = gateway.clients[upstream.name] else { continue }
            hook(client)
        }
        let targets = gateway.config.upstreams.compactMap { upstream in
            upstream.probe.map {
                Prober<ContinuousClock>.Target(upstream: upstream.name, path: $0.path, every: $0.every)
            }
        }
        return Prober(targets: targets, clock: ContinuousClock(), health: health, logger: logger) { target in
            guard let client = gateway.clients[target.upstream] else {
                return .init(passed: false, detail: "no such upstream")
            }
            return await Self.probe(client, path: target.path)
        }
    }

    /// What judges the upstreams' objectives every 30 seconds.
    var evaluator: SLOEvaluator<ContinuousClock> {
        SLOEvaluator(health: health, clock: ContinuousClock())
    }

    /// Takes the objectives of a reloaded `config`.
    func reload(_ config: GatewayConfig) {
        health.replaceObjectives(Dictionary(config.upstreams.map { ($0.name, $0.slo) }) { first, _ in first })
    }

    /// Tells the model about `client`'s endpoint ejections (a client a config reload made, too).
    func hook(_ client: UpstreamClient) {
        let name = client.policy.name
        let endpoints = client.policy.endpoints.map(\.description)
        let failures = client.policy.ejectAfterFailures
        client.onEndpointChange { [health] index, ejected in
            health.endpointChanged(
                name,
                endpoint: index,
                name: endpoints[index],
                ejected: ejected,
                failures: failures
            )
        }
    }

    /// Sends `GET path` through `client` and says what came of it. A 2xx or 3xx answer from the
    /// upstream passes; an answer from the stale-if-error cache does not.
    static func probe(_ client: UpstreamClient, path: String) async -> UpstreamHealth<ContinuousClock>.ProbeOutcome {
        let parts = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let request = UpstreamRequest(
            method: .get,
            path: parts.first.map(String.init) ?? "/",
            query: parts.count > 1 ? String(parts[1]) : nil
        )
        let start = ContinuousClock.now
        // The upstream's own answer: neither a stale one nor the fallback says it is up.
        let result = await client.send(request, correlationID: "probe-\(client.policy.name)", servingStale: false)
        let took = start.duration(to: .now)
        switch result.outcome {
        case .success(let response):
            if case .stream(let body) = response.body {
                _ = try? await body.collect(upTo: 64 << 10)
            }
            let code = response.status.code
            if result.staleAge != nil {
                return .init(passed: false, detail: "the upstream failed; only the stale cache answered")
            }
            if result.fallback {
                return .init(passed: false, detail: "the upstream failed; only the fallback answered")
            }
            if (200..<400).contains(code) {
                return .init(passed: true, detail: "HTTP \(code) in \(took.formattedForHumans)")
            }
            return .init(passed: false, detail: "HTTP \(code) from \(response.endpoint)")
        case .failure(let error as ResilienceError):
            return .init(passed: false, detail: ProblemCode(error.code).name)
        case .failure(let error as UpstreamFailure):
            return .init(passed: false, detail: "\(error.kind.rawValue) failure at \(error.endpoint)")
        case .failure(let error):
            return .init(passed: false, detail: "\(type(of: error))")
        }
    }
}
