import Testing

@testable import BelayHTTP

@Suite struct UpstreamEndpointTests {
    @Test(arguments: ["::1", "[::1]"])
    func ipv6HostsAreBracketedWhereverAnAuthorityIsWritten(host: String) {
        let endpoint = UpstreamEndpoint(scheme: "http", host: host, port: 8080, basePath: "/api")
        #expect(endpoint.host == "::1")
        #expect(endpoint.url(path: "/v1/x", query: "a=1") == "http://[::1]:8080/api/v1/x?a=1")
        #expect(endpoint.hostHeader == "[::1]:8080")
        #expect(endpoint.description == "[::1]:8080")
        #expect(UpstreamEndpoint(scheme: "https", host: host, port: 443).hostHeader == "[::1]")
    }

    @Test func namesAndIPv4AddressesAreWrittenAsIs() {
        let endpoint = UpstreamEndpoint(scheme: "https", host: "api.pay.example", port: 443)
        #expect(endpoint.url(path: "/x", query: nil) == "https://api.pay.example:443/x")
        #expect(endpoint.hostHeader == "api.pay.example")
        #expect(endpoint.description == "api.pay.example:443")
        #expect(UpstreamEndpoint(scheme: "http", host: "10.0.0.1", port: 81).hostHeader == "10.0.0.1:81")
    }
}
