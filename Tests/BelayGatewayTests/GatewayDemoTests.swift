import BelayAPI
import BelayClient
import BelayDemo
import BelayGateway
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(2))) struct GatewayDemoTests {
    @Test func theDemoShowsRetriesFailoverAndStaleAnswersWithNoFailureReachingTheApplication() async throws {
        let lines = Mutex<[String]>([])
        let report = try await GatewayDemo(requestsPerUpstream: 20) { line in lines.withLock { $0.append(line) } }
            .run()
        let tallies = report.upstreams
        let payments = try #require(tallies["payments"])
        let shipping = try #require(tallies["shipping"])
        let rates = try #require(tallies["rates"])
        #expect(tallies.values.allSatisfy { $0.succeeded == $0.requests })
        #expect(payments.retried > 0)
        #expect(payments.upstreamFailures > 0)
        #expect(shipping.failedOver == shipping.requests)
        #expect(rates.stale > 0)
        let output = lines.withLock { $0 }.joined(separator: "\n")
        #expect(output.contains("rates: closed → open"))
        #expect(output.contains("the application saw 0 failures"))
        // What an operator sees: a retried call's trail, each upstream's state, the metrics.
        #expect(output.contains("Show your work: the audit trail of one retried payments call"))
        #expect(output.contains("decision: retried because HTTP 50"))
        #expect(output.contains("rates") && output.contains("stale"))
        #expect(output.contains(#"belay_proxy_requests_total{upstream="payments",outcome="success"}"#))
        // The queue: every order delivered despite the warehouse's outage, one key each.
        let deliveries = report.deliveries
        // Ten through POST /v1/deliveries, one through the proxy (Prefer: respond-async).
        #expect(deliveries.queued == 11 && deliveries.delivered == 11)
        // Each confirmed by the warehouse's webhook; the one whose confirmation was lost was sent
        // again after ack.timeout, with the same key, and confirmed then.
        #expect(deliveries.acknowledged == 11)
        #expect(deliveries.resentUnconfirmed >= 1 && deliveries.confirmations >= 11)
        #expect(output.contains("order-7, whose first confirmation the warehouse lost"))
        #expect(output.contains("with Prefer: respond-async while the warehouse is down: 202, Belay-Degraded: queued"))
        #expect(deliveries.attempts > deliveries.delivered)
        // The proxied write's own attempt reached the warehouse too, unless its breaker refused it.
        #expect((deliveries.attempts...deliveries.attempts + 1).contains(deliveries.arrivals))
        #expect(deliveries.distinctKeys == 11)
    }
}

@Suite(.timeLimit(.minutes(2))) struct DrillDemoTests {
    /// `belay demo --drill`: the drill is reported, its incident closes, and the postmortem draft
    /// has the outage's story in it.
    @Test func theDrillDemoEndsWithAClosedIncidentAndItsPostmortem() async throws {
        let lines = Mutex<[String]>([])
        let outcome = try await DrillDemo(outage: .seconds(2), closeAfter: .seconds(1)) { line in
            lines.withLock { $0.append(line) }
        }
        .run()
        #expect(outcome.report.breakerOpenedAt != nil)
        #expect(outcome.report.recoveredAt != nil)
        // The cache was full before the outage: the application saw no failure.
        #expect(outcome.calls > 0 && outcome.failed == 0)
        let incident = try #require(outcome.incident)
        #expect(incident.status == "closed" && incident.drill && incident.upstream == "catalog")
        #expect(incident.impact.stale > 0 && incident.impact.failed == 0)
        let events = incident.timeline.map(\.event)
        for event in ["drill.started", "first_failure", "detected", "breaker.opened", "recovered", "closed"] {
            #expect(events.contains(event), "no \(event) in \(events)")
        }
        #expect(events.last == "closed")
        let output = lines.withLock { $0 }.joined(separator: "\n")
        #expect(output.contains("$ belay drill catalog --outage 2s"))
        #expect(output.contains("# Postmortem draft: catalog incident during a failure drill (\(incident.id))"))
        #expect(output.contains("- **Status:** closed"))
        #expect(output.contains("| Calls answered from the stale cache | \(incident.impact.stale) |"))
    }
}
