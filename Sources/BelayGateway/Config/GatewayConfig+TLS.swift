public import Foundation
import NIOCore
public import NIOSSL

extension GatewayConfig {
    /// TLS termination on the gateway's listener (`server.tls`), with the certificate chain and
    /// key read from their PEM files when the config was loaded.
    ///
    /// ```yaml
    /// server: { listen: "0.0.0.0:8443", tls: { cert: /etc/belay/tls.crt, key: /etc/belay/tls.key } }
    /// ```
    ///
    /// TLS 1.2 and 1.3 only, forward-secret AEAD ciphers only (``cipherSuites``), ALPN `http/1.1`.
    public struct ServerTLS: Sendable, Hashable {
        /// The PEM file of the certificate chain, leaf first (`server.tls.cert`).
        public var certificatePath: String
        /// The PEM file of the private key (`server.tls.key`).
        public var keyPath: String
        /// The chain as read from ``certificatePath``: the leaf, then any intermediates.
        public var certificateChain: [NIOSSLCertificate]
        /// The key as read from ``keyPath``; it matches the leaf.
        public var privateKey: NIOSSLPrivateKey

        /// Creates server TLS settings from material already read.
        public init(
            certificatePath: String,
            keyPath: String,
            certificateChain: [NIOSSLCertificate],
            privateKey: NIOSSLPrivateKey
        ) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
            self.certificateChain = certificateChain
            self.privateKey = privateKey
        }

        /// The TLS 1.2 ciphers offered (TLS 1.3's are BoringSSL's, all AEAD): ECDHE key exchange
        /// with AES-GCM or ChaCha20-Poly1305, as Mozilla's "intermediate" profile lists.
        public static let cipherSuites: [NIOTLSCipher] = [
            .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ]

        /// The server's TLS configuration: this chain and key, TLS 1.2 at least, ``cipherSuites``,
        /// ALPN `http/1.1`, 1 s to wait for a client's close_notify.
        public var configuration: TLSConfiguration {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: certificateChain.map { .certificate($0) },
                privateKey: .privateKey(privateKey)
            )
            configuration.minimumTLSVersion = .tlsv12
            configuration.cipherSuiteValues = Self.cipherSuites
            configuration.applicationProtocols = ["http/1.1"]
            // A connection closed by the gateway (a slow client, a stop) waits this long for the
            // client's close_notify, not NIOSSL's default 5 s: a slow client's socket is soon free.
            configuration.shutdownTimeout = .seconds(1)
            return configuration
        }

        /// A context for new connections; throws when the key does not match the certificate.
        public func makeContext() throws -> NIOSSLContext {
            try NIOSSLContext(configuration: configuration)
        }
    }

    /// What is valid but unsafe or about to fail, each with its key path: an upstream with
    /// `tls.verify: false`, a certificate that has expired or expires within 14 days.
    /// `belay check-config` prints them; `belay serve` logs them at start (`warning`).
    public var warnings: [ConfigIssue] { warnings(now: Date()) }

    /// ``warnings`` as of `now` (certificate expiry is judged against it).
    public func warnings(now: Date) -> [ConfigIssue] {
        var warnings: [ConfigIssue] = []
        if let tls = server.tls, let leaf = tls.certificateChain.first {
            warnings += Self.expiry(of: leaf, at: "server.tls.cert", now: now)
        }
        for upstream in upstreams {
            guard let tls = upstream.tls else { continue }
            let path = "upstreams.\(upstream.name).tls"
            if !tls.verify {
                warnings.append(
                    ConfigIssue(
                        path: "\(path).verify",
                        message: "is false: the certificate of \(upstream.name) is NOT checked, so anyone on the "
                            + "network path can impersonate it and read every call, credentials included; "
                            + "trust its CA with tls.ca instead"
                    )
                )
            }
            if let leaf = tls.certificateChain.first {
                warnings += Self.expiry(of: leaf, at: "\(path).cert", now: now)
            }
        }
        return warnings
    }

    /// A warning if `certificate` has expired or expires within 14 days of `now`.
    private static func expiry(of certificate: NIOSSLCertificate, at path: String, now: Date) -> [ConfigIssue] {
        let end = Date(timeIntervalSince1970: TimeInterval(certificate.notValidAfter))
        let day = ISO8601DateFormatter.string(
            from: end,
            timeZone: TimeZone(secondsFromGMT: 0)!,
            formatOptions: [.withFullDate]
        )
        if end <= now {
            return [ConfigIssue(path: path, message: "the certificate expired on \(day): peers will refuse it")]
        }
        if end.timeIntervalSince(now) < 14 * 86_400 {
            return [ConfigIssue(path: path, message: "the certificate expires on \(day): renew it")]
        }
        return []
    }
}
