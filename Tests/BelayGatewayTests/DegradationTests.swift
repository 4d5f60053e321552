import Foundation
import Testing

@testable import BelayGateway

/// The degradation level and the sentence support reads aloud, per state and config.
@Suite struct DegradationTests {
    func report(_ state: HealthState, reason: String = "", staleAge: Duration? = nil) -> UpstreamHealthReport {
        UpstreamHealthReport(
            name: "pricing",
            state: state,
            reason: reason,
            since: Date(timeIntervalSince1970: 0),
            windows: [],
            breakerHistory: [],
            probe: nil,
            staleAge: staleAge
        )
    }

    func config(_ change: (inout UpstreamConfig) -> Void = { _ in }) -> UpstreamConfig {
        var upstream = UpstreamConfig(name: "pricing", endpoints: [])
        change(&upstream)
        return upstream
    }

    @Test func eachStateSaysWhatCallersGet() {
        #expect(
            Degradation.of(report(.healthy), config: config())
                == .init(level: .full, summary: "Pricing is working normally.")
        )
        let degraded = Degradation.of(
            report(.degraded, reason: "degraded — 1 of 2 endpoints ejected (b:443); still serving"),
            config: config()
        )
        #expect(degraded.level == .partial)
        #expect(
            degraded.summary == "Pricing is working, but less reliably than usual: 1 of 2 endpoints ejected (b:443)."
        )
        let cached = Degradation.of(report(.stale, staleAge: .seconds(14 * 60)), config: config())
        #expect(cached.level == .cached)
        #expect(cached.summary.hasPrefix("Pricing is showing values from 14 minutes ago"), "\(cached.summary)")
        let fallback = Degradation.of(report(.stale), config: config { $0.criticality = .optional })
        #expect(fallback.level == .partial)
        #expect(
            fallback.summary
                == "Pricing is unavailable; callers get its default answer instead (an optional dependency)."
        )
        let down = Degradation.of(report(.down), config: config())
        #expect(
            down == .init(level: .unavailable, summary: "Pricing is unavailable: calls to it fail until it recovers.")
        )
        let optional = Degradation.of(report(.down), config: config { $0.criticality = .optional })
        #expect(optional.summary.hasSuffix("It is optional: the application can do without it."))
        // Down, with a fallback: every read gets it.
        let withFallback = Degradation.of(
            report(.down),
            config: config {
                $0.criticality = .optional
                $0.fallback = .init()
            }
        )
        #expect(withFallback.level == .partial && withFallback.summary.contains("default answer"))
        let queued = Degradation.of(report(.down), config: config { $0.degradeWrites = .queue })
        #expect(queued.level == .minimal)
        #expect(
            queued.summary
                == "Pricing is down: writes sent with Prefer: respond-async are queued and delivered when it is back; reads fail."
        )
        let cachedReads = Degradation.of(
            report(.down),
            config: config {
                $0.degradeWrites = .queue
                $0.staleIfError = .seconds(600)
            }
        )
        #expect(cachedReads.summary.hasSuffix("reads are answered from the cache where it has them."))
    }

    @Test func namesReadAsTheStartOfASentence() {
        #expect(Degradation.title("order_api") == "Order api")
        #expect(Degradation.title("crm-eu") == "Crm eu")
        #expect(Degradation.title("") == "")
    }
}
