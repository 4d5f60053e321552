import BelayAPI
import BelayClient
import BelayGateway
import BelayTestUpstream
import NIOHTTP1
import Testing

@Suite(.timeLimit(.minutes(1))) struct UpstreamTableTests {
    @Test func theCLIShowsEachUpstreamsStateAndItsDetail() async throws {
        try await GatewayHarness.run(
            config: .pay(
                policy: "circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 2, break: 30s }\n"
                    + "slo: { availability: 99%, window: 1d }"
            )
        ) { gateway in
            gateway.upstreams[0].setBehavior(.always(503))
            for _ in 0..<3 { _ = try await gateway.send(.GET, "/proxy/pay/v1/balance") }
            let client = ManagementClient(baseURL: "http://127.0.0.1:\(gateway.port)", apiKey: nil)

            let answer = try await client.get("/v1/upstreams").decode(UpstreamList.self)
            // Breakers are per instance: the answer names the instance that gave it.
            #expect(answer.instance == GatewayConfig.Server.defaultInstanceName)
            let detail = try await client.get("/v1/upstreams/pay").decode(UpstreamDetail.self)
            #expect(detail.instance == GatewayConfig.Server.defaultInstanceName)
            let list = UpstreamTable.list(answer)
            let lines = list.split(separator: "\n")
            #expect(lines.count == 2)
            #expect(lines[0].hasPrefix("NAME") && lines[0].contains("STATE") && lines[0].contains("P99 MS"))
            #expect(lines[1].hasPrefix("pay") && lines[1].contains("down") && lines[1].contains("open"))

            let shown = UpstreamTable.show(detail.upstream)
            #expect(shown.hasPrefix("pay: down since "))
            #expect(shown.contains("breaker         open"))
            #expect(shown.contains("ENDPOINT") && shown.contains("127.0.0.1:"))
            #expect(shown.contains("WINDOW") && shown.contains("1m"))
            #expect(shown.contains("closed  open"))
            // Three calls, all failed: the budget of 1 % is overspent 99 times over.
            #expect(
                shown.contains(
                    "objectives      availability: 0% of calls answered over the last 1 day against 99%; "
                        + "the error budget is spent"
                )
            )
            let objective = try #require(shown.split(separator: "\n").first { $0.hasPrefix("availability  ") })
            #expect(objective.contains("99%") && objective.contains("0.0%") && objective.contains("-9900.0%"))
            #expect(shown.contains("OBJECTIVE") && shown.contains("BUDGET LEFT") && shown.contains("BURNING"))
            #expect(UpstreamTable.list(UpstreamList(instance: "web-1", upstreams: [])) == "no upstreams configured")
        }
    }
}
