import Belay
import BelayGateway
import BelayHTTP
import BelayTestUpstream
import NIOHTTP1
import Synchronization
import Testing

/// Keeps every exchange it is told about.
final class RecordingObserver: ProxyObserver {
    private let storage = Mutex<[ProxyExchange]>([])

    func observe(_ exchange: ProxyExchange) {
        storage.withLock { $0.append(exchange) }
    }

    var exchanges: [ProxyExchange] { storage.withLock { $0 } }
}

@Suite(.timeLimit(.minutes(1))) struct ProxyExchangeTests {
    @Test func anExchangeCarriesEveryAttemptAndDecision() async throws {
        let observer = RecordingObserver()
        try await GatewayHarness.run(
            config: .pay(policy: "retry: { max_attempts: 3, base: 1ms, cap: 5ms }"),
            observers: [observer]
        ) { gateway in
            gateway.upstreams[0].setBehavior(.sequence([503]))
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/balance?x=1", headers: [("X-Request-Id", "r-1")])
            #expect(answer.status == 200)
            #expect(observer.exchanges.first?.requestID == answer.header("Belay-Request-Id"))
        }
        let exchange = try #require(observer.exchanges.first)
        #expect(observer.exchanges.count == 1)
        #expect(exchange.correlationID == "r-1")
        #expect(exchange.upstream == "pay")
        #expect(exchange.method == "GET")
        #expect(exchange.path == "/v1/balance")
        #expect(exchange.status == 200)
        #expect(exchange.outcome == "success")
        #expect(exchange.attempts.map(\.status) == [503, 200])
        #expect(exchange.decisions.map(\.kind.name) == ["retry_scheduled"])
        #expect(exchange.decisions.first?.correlationID == exchange.requestID)
    }

    @Test func aRefusalIsReportedWithItsProblemAndAnUnknownUpstreamIsNot() async throws {
        let observer = RecordingObserver()
        try await GatewayHarness.run(
            config: .pay(
                policy: "retry: { max_attempts: 1 }\ntimeouts: { connect: 300ms, attempt: 300ms, total: 500ms }"
            ),
            observers: [observer]
        ) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(hang: true))
            let slow = try await gateway.send(.GET, "/proxy/pay/v1/slow")
            #expect(slow.status == 504)
            let unknown = try await gateway.send(.GET, "/proxy/nobody/v1")
            #expect(unknown.status == 404)
        }
        #expect(observer.exchanges.map(\.outcome) == ["timeout"])
        #expect(ProxyExchange.outcomes.isSuperset(of: ["success", "client_error", "server_error", "stale", "timeout"]))
        #expect(observer.exchanges.first?.problem == .timeout)
        #expect(observer.exchanges.first?.attempts.first?.failure == .timeout)
    }
}
