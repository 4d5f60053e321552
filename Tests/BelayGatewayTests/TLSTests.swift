import AsyncHTTPClient
import BelayGateway
import BelayHTTP
import BelayTestUpstream
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import Testing

/// `server.tls` and `upstreams.<name>.tls` as the config reads them.
@Suite struct TLSConfigTests {
    let loader = ConfigLoader(environment: [:])

    private func issues(_ yaml: String) -> [String] { loader.issues(yaml) }

    private func server(_ tls: String, listen: String = "127.0.0.1:8443") -> String {
        """
        server:
          listen: "\(listen)"
          tls: \(tls)
        """
    }

    @Test func aServerCertificateChainAndItsKeyLoad() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let leaf = try ca.issue("gateway", chain: true)
        let config = try loader.load(yaml: server(#"{ cert: "\#(leaf.certificatePath)", key: "\#(leaf.keyPath)" }"#))
        let tls = try #require(config.server.tls)
        let (leafCertificate, caCertificate, leafKey) = (
            try leaf.niosslCertificate, try ca.niosslCertificate, try leaf.niosslKey
        )
        #expect(tls.certificatePath == leaf.certificatePath)
        #expect(tls.certificateChain == [leafCertificate, caCertificate])
        #expect(tls.privateKey == leafKey)
        #expect(tls.configuration.minimumTLSVersion == .tlsv12)
        #expect(tls.configuration.applicationProtocols == ["http/1.1"])
        #expect(config.warnings.isEmpty)
    }

    @Test func eachUnusableServerFileIsNamedAtItsKeyPath() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let leaf = try ca.issue("gateway")
        let other = try ca.issue("other")
        let garbage = try ca.write("not a certificate\n", as: "garbage.pem")
        let missing = ca.folder.appendingPathComponent("missing.pem").path

        #expect(
            issues(server(#"{ cert: "\#(missing)", key: "\#(leaf.keyPath)" }"#)) == [
                "line 3: server.tls.cert: no file at \(missing) (a relative path is read from the working directory)"
            ]
        )
        #expect(
            issues(server(#"{ cert: "\#(garbage)", key: "\#(leaf.keyPath)" }"#)) == [
                "line 3: server.tls.cert: \(garbage) holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            ]
        )
        #expect(
            issues(server(#"{ cert: "\#(leaf.keyPath)", key: "\#(leaf.keyPath)" }"#)) == [
                "line 3: server.tls.cert: \(leaf.keyPath) holds no PEM certificate (-----BEGIN CERTIFICATE-----); "
                    + "it holds a private key: is it the key file?"
            ]
        )
        #expect(
            issues(server(#"{ cert: "\#(leaf.certificatePath)", key: "\#(leaf.certificatePath)" }"#)) == [
                "line 3: server.tls.key: \(leaf.certificatePath) holds no PEM private key Belay can use: "
                    + "it holds a certificate: is it the certificate file?"
            ]
        )
        #expect(
            issues(server(#"{ cert: "\#(ca.folder.path)", key: "\#(leaf.keyPath)" }"#)) == [
                "line 3: server.tls.cert: \(ca.folder.path) is a directory, not a PEM file"
            ]
        )
        #expect(
            issues(server(#"{ cert: "\#(leaf.certificatePath)" }"#)) == [
                "line 3: server.tls.key: is required: the PEM file of the certificate's private key"
            ]
        )
        let mismatch = issues(server(#"{ cert: "\#(leaf.certificatePath)", key: "\#(other.keyPath)" }"#))
        #expect(mismatch.count == 1)
        #expect(
            mismatch.first?.hasPrefix(
                "line 3: server.tls.key: \(other.keyPath) does not match the certificate in \(leaf.certificatePath)"
            ) == true,
            "\(mismatch)"
        )
    }

    @Test func openModeStaysLoopbackOnlyWithTLS() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let leaf = try ca.issue("gateway")
        let found = issues(
            server(#"{ cert: "\#(leaf.certificatePath)", key: "\#(leaf.keyPath)" }"#, listen: "0.0.0.0:8443")
        )
        #expect(found.count == 1)
        #expect(
            found.first?.contains("server.listen: open mode (no consumers configured) is allowed on loopback only")
                == true
        )
    }

    @Test func anExpiredOrExpiringCertificateIsAWarningNotAnError() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let expired = try ca.issue("expired", validFor: -60)
        let config = try loader.load(
            yaml: server(#"{ cert: "\#(expired.certificatePath)", key: "\#(expired.keyPath)" }"#)
        )
        #expect(config.warnings.map(\.path) == ["server.tls.cert"])
        #expect(config.warnings.first?.message.hasPrefix("the certificate expired on ") == true)
        let soon = try ca.issue("soon", validFor: 3 * 86_400)
        let expiring = try loader.load(yaml: server(#"{ cert: "\#(soon.certificatePath)", key: "\#(soon.keyPath)" }"#))
        #expect(expiring.warnings.first?.message.hasPrefix("the certificate expires on ") == true)
        #expect(expiring.warnings(now: Date() - 30 * 86_400).isEmpty)
    }

    private func upstream(_ tls: String, endpoint: String = "https://127.0.0.1:9443") -> String {
        """
        upstreams:
          bank:
            endpoints: ["\(endpoint)"]
            tls: \(tls)
        """
    }

    @Test func anUpstreamsCAClientCertificateAndServerNameLoad() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let client = try ca.issue("client")
        let config = try loader.load(
            yaml: upstream(
                #"{ ca: "\#(ca.certificatePath)", cert: "\#(client.certificatePath)", key: "\#(client.keyPath)", "#
                    + "server_name: Bank.Internal }"
            )
        )
        let tls = try #require(config.upstreams.first?.tls)
        let (caCertificate, clientCertificate, clientKey) = (
            try ca.niosslCertificate, try client.niosslCertificate, try client.niosslKey
        )
        #expect(tls.trustRoots == [caCertificate])
        #expect(tls.certificateChain == [clientCertificate])
        #expect(tls.privateKey == clientKey)
        #expect(tls.serverName == "bank.internal")
        #expect(tls.verify)
        let policy = try #require(config.upstreams.first?.policy)
        #expect(policy.serverName == "bank.internal")
        #expect(policy.tls?.minimumTLSVersion == .tlsv12)
        #expect(policy.tls?.trustRoots == .certificates([caCertificate]))
        #expect(policy.tls?.certificateChain == [.certificate(clientCertificate)])
        #expect(config.warnings.isEmpty)
    }

    @Test func verifyFalseLoadsWithALoudWarning() throws {
        let config = try loader.load(yaml: upstream("{ verify: false }"))
        #expect(config.upstreams.first?.policy.tls?.certificateVerification == CertificateVerification.none)
        #expect(config.warnings.map(\.path) == ["upstreams.bank.tls.verify"])
        #expect(config.warnings.first?.message.contains("is NOT checked") == true)
    }

    @Test func unusableUpstreamTLSSettingsAreNamedAtTheirKeyPaths() throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let client = try ca.issue("client")
        let other = try ca.issue("other")
        #expect(
            issues(upstream(#"{ cert: "\#(client.certificatePath)" }"#)) == [
                "line 4: upstreams.bank.tls.key: is required with tls.cert: the PEM file of the client certificate's key"
            ]
        )
        #expect(
            issues(upstream(#"{ key: "\#(client.keyPath)" }"#)) == [
                "line 4: upstreams.bank.tls.cert: is required with tls.key: the PEM file of the client certificate"
            ]
        )
        let mismatch = issues(upstream(#"{ cert: "\#(client.certificatePath)", key: "\#(other.keyPath)" }"#))
        #expect(mismatch.first?.hasPrefix("line 4: upstreams.bank.tls.key: \(other.keyPath) does not match") == true)
        #expect(
            issues(upstream("{ server_name: 10.0.0.1 }")) == [
                "line 4: upstreams.bank.tls.server_name: must be a DNS name such as api.pay.example "
                    + "(not an address, no port) (got '10.0.0.1')"
            ]
        )
        #expect(
            issues(upstream("{ verify: sometimes }")).first?.hasPrefix("line 4: upstreams.bank.tls.verify:") == true
        )
        #expect(
            issues(upstream("{ pin: abc }")).first?.hasPrefix("line 4: upstreams.bank.tls.pin: unknown key") == true
        )
        #expect(
            issues(upstream(#"{ ca: "\#(ca.certificatePath)" }"#, endpoint: "http://127.0.0.1:9080")) == [
                "line 3: upstreams.bank.endpoints[0]: is http:// but tls is set: TLS options apply to https:// endpoints only"
            ]
        )
    }
}

/// TLS on the wire: the gateway terminating it, and the gateway calling upstreams over it.
@Suite struct TLSTests {
    /// `server.tls` for `issued`.
    private static func serverTLS(_ issued: TestCertificateAuthority.Issued) -> String {
        #"tls: { cert: "\#(issued.certificatePath)", key: "\#(issued.keyPath)" }"#
    }

    /// Runs `body` with a client trusting `ca` (none: the system's roots), at most `maximumVersion`.
    private static func withClient(
        trusting ca: TestCertificateAuthority?,
        maximumVersion: TLSVersion? = nil,
        _ body: (HTTPClient) async throws -> Void
    ) async throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca { tls.trustRoots = .certificates([try ca.niosslCertificate]) }
        if let maximumVersion { tls.maximumTLSVersion = maximumVersion }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.connectionPool.retryConnectionEstablishment = false
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            try await body(client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    private static func get(_ client: HTTPClient, _ url: String) async throws -> (status: UInt, body: String) {
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (response.status.code, String(buffer: body))
    }

    // MARK: the gateway's listener

    @Test func aClientTrustingThePrivateCAReachesTheGatewayOverTLSWithALPNHTTP1() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let leaf = try ca.issue("gateway")
        try await GatewayHarness.run(config: .pay(server: Self.serverTLS(leaf))) { gateway in
            try await Self.withClient(trusting: ca) { client in
                let health = try await Self.get(client, "https://127.0.0.1:\(gateway.port)/healthz")
                #expect(health.status == 200)
                let proxied = try await Self.get(client, "https://localhost:\(gateway.port)/proxy/pay/v1/items")
                #expect(proxied.status == 200)
            }
            let probe = try await TLSProbe.exchange(
                port: gateway.port,
                trusting: ca,
                ["GET /healthz HTTP/1.1\r\nHost: belay.test\r\nConnection: close\r\n\r\n"]
            )
            #expect(probe.negotiatedProtocol == "http/1.1")
            #expect(probe.version == .tlsv13)
            #expect(probe.text.hasPrefix("HTTP/1.1 200"), "\(probe.text)")
        }
    }

    @Test func aClientThatDoesNotTrustTheCAIsRefused() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let leaf = try ca.issue("gateway")
        try await GatewayHarness.run(config: .pay(server: Self.serverTLS(leaf))) { gateway in
            try await Self.withClient(trusting: nil) { client in
                await #expect(throws: NIOSSLError.self) {
                    _ = try await Self.get(client, "https://127.0.0.1:\(gateway.port)/healthz")
                }
            }
            // A CA of its own is not the gateway's either.
            let stranger = try TestCertificateAuthority("Stranger CA")
            defer { stranger.remove() }
            try await Self.withClient(trusting: stranger) { client in
                await #expect(throws: NIOSSLError.self) {
                    _ = try await Self.get(client, "https://127.0.0.1:\(gateway.port)/healthz")
                }
            }
        }
    }

    @Test func TLS11IsRefusedAndTLS12Accepted() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let leaf = try ca.issue("gateway")
        try await GatewayHarness.run(config: .pay(server: Self.serverTLS(leaf))) { gateway in
            try await Self.withClient(trusting: ca, maximumVersion: .tlsv11) { client in
                await #expect(throws: NIOSSLError.self) {
                    _ = try await Self.get(client, "https://127.0.0.1:\(gateway.port)/healthz")
                }
            }
            try await Self.withClient(trusting: ca, maximumVersion: .tlsv12) { client in
                let health = try await Self.get(client, "https://127.0.0.1:\(gateway.port)/healthz")
                #expect(health.status == 200)
            }
        }
    }

    @Test func plainHTTPToTheTLSListenerGetsNoAnswer() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let leaf = try ca.issue("gateway")
        try await GatewayHarness.run(config: .pay(server: Self.serverTLS(leaf))) { gateway in
            let received = try await RawClient.exchange(
                port: gateway.port,
                ["GET /healthz HTTP/1.1\r\nHost: belay.test\r\n\r\n"]
            )
            #expect(received.closed)
            #expect(received.status == nil, "\(received.text)")
        }
    }

    @Test func aConnectionThatNeverHandshakesIsClosedAfterTheHeaderTimeout() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let leaf = try ca.issue("gateway")
        let server = "header_timeout: 200ms, \(Self.serverTLS(leaf))"
        try await GatewayHarness.run(config: .pay(server: server)) { gateway in
            let received = try await RawClient.exchange(port: gateway.port, [])
            #expect(received.closed)
            #expect(received.text.isEmpty)
        }
    }

    @Test func aHeadThatNeverEndsOverTLSIsClosedAfterTheHeaderTimeout() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let leaf = try ca.issue("gateway")
        let server = "header_timeout: 200ms, \(Self.serverTLS(leaf))"
        try await GatewayHarness.run(config: .pay(server: server)) { gateway in
            let probe = try await TLSProbe.exchange(
                port: gateway.port,
                trusting: ca,
                ["GET /healthz HTTP/1.1\r\nHost: belay.test\r\nX-Slow: "]
            )
            #expect(probe.negotiatedProtocol == "http/1.1")
            #expect(probe.closed)
            #expect(!probe.text.hasPrefix("HTTP/1.1 200"), "\(probe.text)")
        }
    }

    // MARK: upstreams

    @Test func anUpstreamWithAPrivateCAIsReachedWithItsCAAndRefusedWithout() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let upstreamTLS = try ca.upstreamTLS(try ca.issue("upstream"))
        let trusting = #"tls: { ca: "\#(ca.certificatePath)" }"#
        try await GatewayHarness.run(upstreamTLS: upstreamTLS, config: .pay(policy: trusting)) { gateway in
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/items")
            #expect(answer.status == 200, "\(answer.body)")
            #expect(gateway.upstreams[0].requests.map(\.path) == ["/v1/items"])
        }
        try await GatewayHarness.run(upstreamTLS: upstreamTLS, config: .pay()) { gateway in
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/items")
            #expect(answer.status == 502)
            #expect(answer.code == "upstream-unreachable")
            let detail = answer.problem?["detail"] as? String ?? ""
            #expect(detail.contains("TLS handshake failed: certificate verify failed"), "\(detail)")
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func anUpstreamRequiringAClientCertificateIsReachedWithItAndRefusedWithout() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let clients = try TestCertificateAuthority("Bank client CA")
        defer { clients.remove() }
        let upstreamTLS = try ca.upstreamTLS(try ca.issue("upstream"), requiringClientsOf: clients)
        let client = try clients.issue("belay-client")
        let mutual =
            #"tls: { ca: "\#(ca.certificatePath)", cert: "\#(client.certificatePath)", key: "\#(client.keyPath)" }"#
        try await GatewayHarness.run(upstreamTLS: upstreamTLS, config: .pay(policy: mutual)) { gateway in
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/items")
            #expect(answer.status == 200, "\(answer.body)")
            #expect(gateway.upstreams[0].requests.count == 1)
        }
        // Signed by a CA the upstream does not accept clients of: refused as having none.
        let stranger = try ca.issue("stranger-client")
        let wrong =
            #"tls: { ca: "\#(ca.certificatePath)", cert: "\#(stranger.certificatePath)", key: "\#(stranger.keyPath)" }"#
        for policy in [#"tls: { ca: "\#(ca.certificatePath)" }"#, wrong] {
            try await GatewayHarness.run(upstreamTLS: upstreamTLS, config: .pay(policy: policy)) { gateway in
                let answer = try await gateway.send(.GET, "/proxy/pay/v1/items")
                #expect(answer.status == 502, "\(answer.body)")
                #expect(answer.code == "upstream-unreachable")
                #expect(gateway.upstreams[0].requests.isEmpty)
            }
        }
    }

    @Test func serverNameIsSentAsSNIAndCheckedInPlaceOfTheEndpointsAddress() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        // Valid for pay.internal only: not for the address the endpoint names.
        let upstreamTLS = try ca.upstreamTLS(try ca.issue("upstream", names: ["pay.internal"], addresses: []))
        let named = #"tls: { ca: "\#(ca.certificatePath)", server_name: pay.internal }"#
        try await GatewayHarness.run(upstreamTLS: upstreamTLS, config: .pay(policy: named)) { gateway in
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/items")
            #expect(answer.status == 200, "\(answer.body)")
            // Every handshake (under load a connection may be made again) names pay.internal.
            let names = gateway.upstreams[0].serverNames
            #expect(!names.isEmpty && names.allSatisfy { $0 == "pay.internal" }, "\(names)")
            // The Host header stays the endpoint's.
            let host = gateway.upstreams[0].requests.first?.headers["host"]
            #expect(host?.hasPrefix("127.0.0.1:") == true, "\(String(describing: host))")
        }
        let unnamed = #"tls: { ca: "\#(ca.certificatePath)" }"#
        try await GatewayHarness.run(upstreamTLS: upstreamTLS, config: .pay(policy: unnamed)) { gateway in
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/items")
            #expect(answer.status == 502)
            let detail = answer.problem?["detail"] as? String ?? ""
            #expect(detail.contains("TLS"), "\(detail)")
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func verifyFalseReachesAnUntrustedUpstreamAndSaysSoInTheLogs() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let upstreamTLS = try ca.upstreamTLS(try ca.issue("upstream"))
        let logs = LogStore()
        try await GatewayHarness.run(
            upstreamTLS: upstreamTLS,
            config: .pay(policy: "tls: { verify: false }"),
            logs: logs,
            logLevel: .warning
        ) { gateway in
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/items")
            #expect(answer.status == 200, "\(answer.body)")
        }
        let warnings = logs.records.filter { $0.level == .warning && $0.message.contains("upstreams.pay.tls.verify") }
        #expect(warnings.count == 1)
        #expect(warnings.first?.message.contains("is NOT checked") == true)
    }

    @Test func aDeliveryReachesAnUpstreamOverTLS() async throws {
        let ca = try TestCertificateAuthority()
        defer { ca.remove() }
        let clients = try TestCertificateAuthority("Bank client CA")
        defer { clients.remove() }
        let upstreamTLS = try ca.upstreamTLS(try ca.issue("upstream"), requiringClientsOf: clients)
        let client = try clients.issue("belay-client")
        let mutual =
            #"tls: { ca: "\#(ca.certificatePath)", cert: "\#(client.certificatePath)", key: "\#(client.keyPath)" }"#
        try await GatewayHarness.run(upstreamTLS: upstreamTLS, config: .pay(policy: mutual)) { gateway in
            let answer = try await gateway.queue(
                #"{"upstream":"pay","method":"POST","path":"/v1/orders","body":{"order":42}}"#,
                headers: [("Idempotency-Key", "order-42")]
            )
            #expect(answer.status == 202, "\(answer.body)")
            let id = try #require(answer.problem?["id"] as? String)
            _ = try await gateway.delivery(id) { $0["status"] as? String == "delivered" }
            #expect(gateway.upstreams[0].requests.map(\.path) == ["/v1/orders"])
        }
    }
}

/// A TLS client that reports the handshake (ALPN, version) and what the server sent: it
/// writes raw bytes over TLS, then reads until the server closes or `bound` passes.
enum TLSProbe {
    struct Outcome {
        var negotiatedProtocol: String?
        var version: TLSVersion?
        var text: String
        var closed: Bool
    }

    static func exchange(
        port: Int,
        trusting ca: TestCertificateAuthority,
        offering protocols: [String] = ["h2", "http/1.1"],
        _ parts: [String],
        bound: Duration = .seconds(10)
    ) async throws -> Outcome {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([try ca.niosslCertificate])
        configuration.applicationProtocols = protocols
        let context = try NIOSSLContext(configuration: configuration)
        let (channel, handshake) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    try operations.addHandler(NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    let observer = HandshakeObserver(promise: channel.eventLoop.makePromise())
                    try operations.addHandler(observer)
                    return (
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel),
                        observer.promise.futureResult
                    )
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            // Read when the handshake completed: the server may close soon after (a timeout).
            let (negotiated, version) = try await handshake.get()
            for part in parts {
                do { try await outbound.write(ByteBuffer(string: part)) } catch { break }
            }
            let received = try await withThrowingTaskGroup(of: (String, Bool)?.self) { group in
                group.addTask {
                    var text = ""
                    do {
                        for try await buffer in inbound { text += String(buffer: buffer) }
                    } catch {
                        // A reset or a TLS close without close_notify is closed too.
                    }
                    return (text, true)
                }
                group.addTask {
                    try await Task.sleep(for: bound)
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first ?? ("", false)
            }
            return Outcome(negotiatedProtocol: negotiated, version: version, text: received.0, closed: received.1)
        }
    }

    /// Completes `promise` with the negotiated protocol and version once the handshake
    /// completes, or fails it.
    private final class HandshakeObserver: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer

        let promise: EventLoopPromise<(String?, TLSVersion?)>
        private var done = false

        init(promise: EventLoopPromise<(String?, TLSVersion?)>) {
            self.promise = promise
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case TLSUserEvent.handshakeCompleted(let negotiated) = event, !done {
                done = true
                let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
                promise.succeed((negotiated, tls?.tlsVersion))
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if !done {
                done = true
                promise.fail(error)
            }
            context.fireErrorCaught(error)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !done {
                done = true
                promise.fail(ChannelError.eof)
            }
            context.fireChannelInactive()
        }
    }
}
