import BelayGateway
import Testing

@Suite struct ProxyPathTests {
    @Test func splitsUpstreamAndPath() throws {
        let split = try ProxyPath.split("/proxy/payments/v1/charges/ch%201").get()
        #expect(split.upstream == "payments")
        #expect(split.path == "/v1/charges/ch%201")
        #expect(try ProxyPath.split("/proxy/payments").get().path == "/")
    }

    @Test(arguments: [
        ("/proxy/pay/../admin", ProxyPath.Rejection.dotSegment),
        ("/proxy/pay/%2e%2E/admin", .dotSegment),
        ("/proxy/pay/v1/%2e", .dotSegment),
        ("/proxy/pay/v1/..%2Fadmin", .encodedSeparator),
        ("/proxy/pay/v1/a%5cb", .encodedSeparator),
        ("/proxy/pay/v1/a\\b", .encodedSeparator),
        ("/proxy/pay/v1/a%7Fb", .controlCharacter),
        ("/proxy/pay/%zz", .badEncoding),
        ("/proxy/pay/%c3%28", .badEncoding),
        ("/proxy/pay/a%00b", .controlCharacter),
        ("/proxy//x", .missingUpstream),
        ("/proxy/a%2Fb/x", .missingUpstream),
    ])
    func refusesEscapes(path: String, expected: ProxyPath.Rejection) {
        guard case .failure(let rejection) = ProxyPath.split(path) else {
            Issue.record("\(path) was accepted")
            return
        }
        #expect(rejection == expected)
    }
}
