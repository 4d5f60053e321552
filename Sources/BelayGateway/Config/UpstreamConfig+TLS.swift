public import NIOSSL

extension UpstreamConfig {
    /// How calls to an upstream's `https` endpoints use TLS (`upstreams.<name>.tls`), with the
    /// PEM files read when the config was loaded.
    ///
    /// ```yaml
    /// tls: { ca: /etc/belay/bank-ca.pem, cert: /etc/belay/client.pem, key: /etc/belay/client.key,
    ///        server_name: api.bank.example }
    /// ```
    public struct TLS: Sendable, Hashable {
        /// The PEM file of the CAs trusted for this upstream (`ca`), if set.
        public var caPath: String?
        /// The CAs read from ``caPath``: trusted instead of the system's roots. Nil: the system's.
        public var trustRoots: [NIOSSLCertificate]?
        /// The PEM file of the client certificate chain for mutual TLS (`cert`), if set.
        public var certificatePath: String?
        /// The client chain read from ``certificatePath``, leaf first; empty without mutual TLS.
        public var certificateChain: [NIOSSLCertificate] = []
        /// The PEM file of the client certificate's key (`key`), if set.
        public var keyPath: String?
        /// The key read from ``keyPath``; it matches the client certificate.
        public var privateKey: NIOSSLPrivateKey?
        /// The name sent as SNI and checked against the upstream's certificate instead of each
        /// endpoint's host (`server_name`), if set. The `Host` header stays the endpoint's.
        public var serverName: String?
        /// Whether the upstream's certificate is checked (`verify`). Default true; false only
        /// with a warning (``GatewayConfig/warnings``).
        public var verify = true

        /// Creates settings that change nothing: the system's trust roots, no client certificate.
        public init() {}
    }

    /// The TLS configuration of calls to this upstream: TLS 1.2 at least, and what ``tls`` sets.
    var tlsConfiguration: TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        guard let tls else { return configuration }
        if let roots = tls.trustRoots { configuration.trustRoots = .certificates(roots) }
        if let key = tls.privateKey, !tls.certificateChain.isEmpty {
            configuration.certificateChain = tls.certificateChain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
        }
        if !tls.verify { configuration.certificateVerification = .none }
        return configuration
    }
}
