import BelayGateway
import BelayTestUpstream
import Testing

/// A delivery's `path` is a request target: nothing that could not be sent as one is queued.
@Suite struct DeliveryPathTests {
    @Test(arguments: [
        #"/v1/orders?a=1\r\nX-Injected: yes"#,
        #"/v1/orders?a=1\nb"#,
        #"/v1/orders?a=\u0000"#,
        #"/v1/orders?a=\t1"#,
        #"/v1/orders?a=\u007f"#,
        #"/v1/orders?a=b c"#,
        #"/v1/orders?a=<script>"#,
        #"/v1/orders?a=1#fragment"#,
        #"/v1/orders?a=%zz"#,
        #"/v1/orders?a=%4"#,
        #"/v1/orders?a=caf\u00e9"#,
        #"/v1/or ders"#,
        #"/v1/or\r\nders"#,
        #"/v1/\"quoted\""#,
    ])
    func aPathThatIsNoRequestTargetIsRefused(path: String) async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let answer = try await gateway.queue(#"{"upstream":"pay","method":"POST","path":"\#(path)"}"#)
            #expect(answer.status == 400, "\(answer.body)")
            #expect(answer.header("Content-Type") == "application/problem+json")
            #expect(answer.code == "invalid-request")
            #expect(answer.problem?["field"] as? String == "/path")
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func everyCharacterARequestTargetAllowsIsQueuedAsWritten() async throws {
        let path = "/v1/a-b_c.d~e!$&'()*+,;=:@%20?q=a%0D%0A&r=/x?y:z@w!$'()*+,;=~-._"
        try await GatewayHarness.run(config: .pay()) { gateway in
            let answer = try await gateway.queue(#"{"upstream":"pay","method":"POST","path":"\#(path)"}"#)
            #expect(answer.status == 202, "\(answer.body)")
            let id = try #require(answer.problem?["id"] as? String)
            _ = try await gateway.delivery(id) { $0["status"] as? String == "delivered" }
            #expect(gateway.upstreams[0].requests.first?.path == path)
        }
    }
}
