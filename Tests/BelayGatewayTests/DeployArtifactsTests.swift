import Foundation
import Testing

/// The Prometheus rules and the Grafana dashboard under deploy/ name only metrics a running
/// gateway exports and docs/metrics.md documents, and the dashboard is one Grafana can load.
/// (`scripts/check-deploy.sh` has promtool check the rules' and the panels' PromQL and run
/// the rules' unit tests.)
@Suite struct DeployArtifactsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let rulesPath = "deploy/prometheus/belay.rules.yml"
    static let dashboardPath = "deploy/grafana/belay-dashboard.json"

    static func text(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// Every `belay_…` metric family a text names (a histogram's `_bucket`, `_sum` and `_count`
    /// series count as their family).
    static func families(in text: String) -> Set<String> {
        var names = Set<String>()
        for match in text.matches(of: /belay_[a-z0-9_]+/) {
            var name = String(match.output)
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                name.removeLast(suffix.count)
            }
            names.insert(name)
        }
        return names
    }

    static func dashboard() throws -> [String: Any] {
        let data = Data(try text(dashboardPath).utf8)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The expressions of every panel's targets.
    static func expressions(_ dashboard: [String: Any]) -> [String] {
        let panels = dashboard["panels"] as? [[String: Any]] ?? []
        return panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
    }

    static func config(_ upstream: String) -> String {
        """
        server: { listen: "127.0.0.1:0" }
        upstreams:
          pay:
            endpoints: ["\(upstream)"]
            bulkhead: { adaptive: { algorithm: gradient } }
            probe: { path: /health, every: 60s }
            slo: { availability: 99.9%, latency: { p99: 1s } }
        deliveries: { schedule: [0s, 100ms] }
        webhooks:
          shop:
            verify: { scheme: standard-webhooks, secret: "\(inboxSecret)" }
            forward_to: "\(upstream)/hooks/shop"
            forward_secret: "\(forwardSecret)"
        """
    }

    @Test func everyMetricTheRulesAndTheDashboardNameIsExportedAndDocumented() async throws {
        let named = Self.families(in: try Self.text(Self.rulesPath))
            .union(Self.families(in: Self.expressions(try Self.dashboard()).joined(separator: "\n")))
        // Not a vacuous check: the upstreams', queue's, inbox's and gateway's families are all there.
        #expect(named.count >= 25, "\(named.sorted())")
        let documented = try Self.text("docs/metrics.md")
        let undocumented = named.filter { !documented.contains("`\($0)`") }
        #expect(undocumented.isEmpty, "named in deploy/ but not in docs/metrics.md: \(undocumented.sorted())")

        try await GatewayHarness.run(config: .custom { Self.config($0[0]) }) { gateway in
            // A rejection reason's series appears when first counted: count one.
            let forged = try await gateway.deliverWebhook(
                #"{"type":"order.paid"}"#,
                id: "msg_1",
                secret: "whsec_dGhpcyBpcyBub3QgdGhlIHNob3AncyBzZWNyZXQ="
            )
            #expect(forged.status == 401)
            let scrape = try await gateway.scrape()
            let missing = named.filter { scrape.types[$0] == nil }
            #expect(missing.isEmpty, "named in deploy/ but not exported: \(missing.sorted())")
        }
    }

    @Test func theDashboardIsOneGrafanaLoads() throws {
        let dashboard = try Self.dashboard()
        #expect(dashboard["uid"] as? String == "belay-overview")
        #expect((dashboard["schemaVersion"] as? Int ?? 0) >= 36)
        let variables = ((dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? [])
            .compactMap { $0["name"] as? String }
        #expect(variables == ["datasource", "upstream"])

        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let ids = panels.compactMap { $0["id"] as? Int }
        #expect(ids.count == panels.count && Set(ids).count == ids.count, "every panel has its own id")
        var occupied = Set<[Int]>()
        for panel in panels {
            let title = panel["title"] as? String ?? "?"
            let grid = try #require(panel["gridPos"] as? [String: Int], "\(title)")
            let (x, y, w, h) = (grid["x"] ?? -1, grid["y"] ?? -1, grid["w"] ?? 0, grid["h"] ?? 0)
            #expect(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24, "\(title): \(grid)")
            // No two panels overlap: each grid cell belongs to one.
            for column in x..<max(x + w, x) {
                for line in y..<max(y + h, y) {
                    #expect(occupied.insert([column, line]).inserted, "\(title) overlaps another panel")
                }
            }
            guard panel["type"] as? String != "row" else { continue }
            #expect(["timeseries", "state-timeline", "stat"].contains(panel["type"] as? String), "\(title)")
            #expect((panel["datasource"] as? [String: String])?["uid"] == "${datasource}", "\(title)")
            #expect(!(panel["description"] as? String ?? "").isEmpty, "\(title) says what it shows")
            let targets = try #require(panel["targets"] as? [[String: Any]], "\(title)")
            let refIDs = targets.compactMap { $0["refId"] as? String }
            #expect(!targets.isEmpty && Set(refIDs).count == targets.count, "\(title): one refId per target")
            for target in targets {
                let expression = target["expr"] as? String ?? ""
                #expect(expression.contains("belay_") || expression.contains("up{"), "\(title): \(expression)")
                // Only the dashboard's own variables and Grafana's rate interval.
                for variable in expression.matches(of: /\$[a-z_]+/) {
                    #expect(["$upstream", "$__rate_interval"].contains(String(variable.output)), "\(title)")
                }
            }
        }
    }
}
