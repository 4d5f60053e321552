import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The gateway's configuration, as read from `belay.yaml` (see DESIGN.md, "Config").
///
/// Build one with ``ConfigLoader``; every default below is what an absent key means.
public struct GatewayConfig: Sendable {
    /// Where the gateway listens and how much it accepts.
    public struct Server: Sendable, Hashable {
        /// The address to listen on. Default `127.0.0.1:8080`.
        public var listen: ListenAddress = ListenAddress(host: "127.0.0.1", port: 8080)
        /// The largest request body accepted, in bytes. Default 1 MiB.
        public var maxBody: Int = 1 << 20
        /// How long a request's head may take to arrive whole: from the connection's opening
        /// for its first request, from the first byte of each later one. Default 10 s.
        public var headerTimeout: Duration = .seconds(10)
        /// How long a keep-alive connection may wait with no request in progress. Default 60 s.
        public var idleTimeout: Duration = .seconds(60)
        /// How long a request's body may take to arrive whole, from the end of its head.
        /// Default 30 s.
        public var bodyTimeout: Duration = .seconds(30)
        /// How long a graceful stop (SIGTERM) keeps serving new connections after `/readyz`
        /// turns 503, so that a load balancer notices and stops sending, before the listener
        /// closes. Default 5 s; 0 closes the listener at once; at most ``maximumDrain``.
        public var drain: Duration = .seconds(5)
        /// The name this instance goes by: `/v1/upstreams` says it (breakers and health are per
        /// instance), and its workers' lease owners start with it. Default: the host's name and
        /// the process id, e.g. `web-2:4123`. 1 to 64 letters, digits, '-', '_', '.' or ':'.
        public var instanceName: String = Self.defaultInstanceName
        /// TLS termination (`server.tls`), if set; nil: plain HTTP.
        public var tls: ServerTLS?

        /// The default instance name: `<host name>:<process id>`.
        public static var defaultInstanceName: String {
            let host = ProcessInfo.processInfo.hostName.prefix(48)
            let plain = host.filter { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
            return "\(plain.isEmpty ? "belay" : String(plain)):\(ProcessInfo.processInfo.processIdentifier)"
        }

        /// The longest `drain` the config accepts: 10 minutes.
        public static let maximumDrain: Duration = .seconds(600)

        /// Creates the default server settings.
        public init() {}
    }

    /// A `host:port` to listen on.
    public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
        /// The host: an IPv4 or IPv6 address, or `localhost`.
        public var host: String
        /// The TCP port; 0 picks a free one.
        public var port: Int

        /// Creates an address.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// Whether the address is on the loopback interface only: an IPv4 literal in
        /// 127.0.0.0/8, the IPv6 literal `::1` (in any of its spellings), or exactly
        /// `localhost`. Any other name is whatever DNS says it is: `127.0.0.1.example.com` is
        /// not loopback.
        public var isLoopback: Bool {
            if host == "localhost" { return true }
            var v4 = in_addr()
            if inet_pton(AF_INET, host, &v4) == 1 {
                // The first octet of the address in network byte order.
                return withUnsafeBytes(of: &v4) { $0[0] } == 127
            }
            var v6 = in6_addr()
            if inet_pton(AF_INET6, host, &v6) == 1 {
                return withUnsafeBytes(of: &v6) { bytes in bytes.dropLast().allSatisfy { $0 == 0 } && bytes.last == 1 }
            }
            return false
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Where durable records live.
    public enum Storage: Sendable, Hashable, CustomStringConvertible {
        /// An embedded SQLite database at this path.
        case sqlite(path: String)
        /// A PostgreSQL database (the URL holds credentials: never print it whole).
        case postgres(url: Secret)

        /// The default: `sqlite:./belay-data/belay.db`.
        public static let `default` = Storage.sqlite(path: "./belay-data/belay.db")

        public var description: String {
            switch self {
            case .sqlite(let path): "sqlite:\(path)"
            case .postgres: "postgres://<redacted>"
            }
        }
    }

    /// A client application allowed to call the gateway.
    public struct Consumer: Sendable, Hashable {
        /// The consumer's name, e.g. `orders-app`.
        public var name: String
        /// The lowercase hex SHA-256 of its API key.
        public var keySHA256: String
        /// What it may do, e.g. `proxy:*`, `proxy:payments`, `deliveries:write`.
        public var scopes: [String]
        /// Its own inbound rate limit, if any.
        public var rateLimit: RateLimit?

        /// Creates a consumer.
        public init(name: String, keySHA256: String, scopes: [String], rateLimit: RateLimit? = nil) {
            self.name = name
            self.keySHA256 = keySHA256
            self.scopes = scopes
            self.rateLimit = rateLimit
        }
    }

    /// A token-bucket limit: `rps` on average, bursts up to `burst`.
    public struct RateLimit: Sendable, Hashable {
        /// Requests per second on average.
        public var rps: Double
        /// Requests allowed at once after a quiet spell.
        public var burst: Int

        /// Creates a limit.
        public init(rps: Double, burst: Int) {
            self.rps = rps
            self.burst = burst
        }

        /// The `rps` a config may set: one request in about 11.5 days up to a million a second.
        /// Beyond either end a limiter's wait or burst would not fit its types.
        public static let rpsRange: ClosedRange<Double> = 0.000_001...1_000_000
        /// ``rpsRange`` as the config's error messages state it.
        static let rpsRangeDescription = "between 0.000001 and 1000000"
        /// The `burst` a config may set.
        public static let burstRange: ClosedRange<Int> = 1...10_000_000

        /// The burst when the config sets none: `rps` rounded up, at least 1 (a second's worth).
        /// `rps` is in ``rpsRange``; values outside it are clamped rather than trapped on.
        public static func defaultBurst(rps: Double) -> Int {
            guard rps.isFinite else { return rps > 0 ? burstRange.upperBound : burstRange.lowerBound }
            return Int(min(max(rps.rounded(.up), 1), Double(burstRange.upperBound)))
        }
    }

    /// The durable delivery queue's schedule and escalation.
    public struct Deliveries: Sendable, Hashable {
        /// The delay before each attempt. Default `0s, 5s, 5m, 20m, 4h, 1d`.
        public var schedule: [Duration] = [
            .zero, .seconds(5), .seconds(300), .seconds(1_200), .seconds(14_400), .seconds(86_400),
        ]
        /// Failed attempts after which a "still trying" alert is sent. Default 3.
        public var notifyAfter: Int = 3
        /// How long after its first failed attempt a delivery still being retried is alerted
        /// "still trying", even between attempts (`notify_after: 20m`). Default none.
        public var notifyAge: Duration?
        /// How long a delivery that requires an acknowledgement waits for it. Default 1 h.
        public var ackTimeout: Duration = .seconds(3_600)
        /// How long a caller's `Idempotency-Key` is remembered after its accept. Default 24 h.
        public var keyRetention: Duration = .seconds(86_400)
        /// Deliveries sent at once to one upstream. Default 8.
        public var concurrency: Int = 8

        /// Creates the default delivery settings.
        public init() {}
    }

    /// A webhook source: how its deliveries are verified and where they are forwarded.
    ///
    /// ```yaml
    /// webhooks:
    ///   stripe:
    ///     verify: { scheme: stripe, secret: "${STRIPE_WHSEC}", tolerance: 5m }
    ///   shop:
    ///     verify: { scheme: hmac, secret: "${SHOP_SECRET}", header: X-Shop-Hmac-Sha256,
    ///               encoding: base64, id_pointer: "/id" }
    /// ```
    public struct WebhookSource: Sendable, Hashable {
        /// The signature schemes Belay verifies.
        public enum Scheme: String, Sendable, Hashable, CaseIterable {
            /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
            case standardWebhooks = "standard-webhooks"
            /// Stripe: `Stripe-Signature: t=…,v1=…`.
            case stripe
            /// GitHub: `X-Hub-Signature-256: sha256=…`.
            case github
            /// An HMAC of the raw body in a configurable header (see ``HMACOptions``).
            case hmac
        }

        /// How an `hmac` source signs: an HMAC of the raw body, in one header.
        public struct HMACOptions: Sendable, Hashable {
            /// The hash function of the HMAC.
            public enum Algorithm: String, Sendable, Hashable, CaseIterable {
                /// HMAC-SHA256.
                case sha256
                /// HMAC-SHA512.
                case sha512
            }

            /// How the MAC is written in the header.
            public enum Encoding: String, Sendable, Hashable, CaseIterable {
                /// Hexadecimal, either case.
                case hex
                /// Standard base64 (RFC 4648 §4), padding optional.
                case base64
            }

            /// The header holding the signature, e.g. `X-Signature`.
            public var header: String
            /// The hash function. Default SHA-256.
            public var algorithm: Algorithm
            /// The MAC's encoding. Default hex.
            public var encoding: Encoding
            /// Text before the MAC in the header, e.g. `sha256=`; nil for none (the default).
            public var prefix: String?
            /// The header holding the event id, when the id is not read from the body by
            /// ``WebhookSource/idPointer``.
            public var idHeader: String?

            /// Creates the options; every default is what an absent config key means.
            public init(
                header: String,
                algorithm: Algorithm = .sha256,
                encoding: Encoding = .hex,
                prefix: String? = nil,
                idHeader: String? = nil
            ) {
                self.header = header
                self.algorithm = algorithm
                self.encoding = encoding
                self.prefix = prefix
                self.idHeader = idHeader
            }
        }

        /// Verify-then-act: where the current state of an event's resource is fetched from,
        /// through the proxy's policy for that upstream, before each forward.
        public struct CurrentState: Sendable, Hashable {
            /// The configured upstream the state is fetched through, e.g. `stripe-api`.
            public var upstream: String
            /// The path, with RFC 6901 JSON pointers into the event in braces, e.g.
            /// `/v1/charges/{/data/object/id}`.
            public var path: String

            /// Creates the option.
            public init(upstream: String, path: String) {
                self.upstream = upstream
                self.path = path
            }
        }

        /// The source's name, the `{source}` of `POST /webhooks/{source}`.
        public var name: String
        /// The signature scheme.
        public var scheme: Scheme
        /// The verification secrets (several during a rotation). For `standard-webhooks`,
        /// `whsec_` secrets and `whpk_` ed25519 public keys; for the other schemes, the
        /// secret's text as the provider shows it.
        public var secrets: [Secret]
        /// How far a signed timestamp may be from now, either way. Default 5 minutes.
        public var tolerance: Duration
        /// Where verified events are forwarded.
        public var forwardTo: String?
        /// The Standard Webhooks secret Belay signs forwards with.
        public var forwardSecret: Secret?
        /// The options of the `hmac` scheme; nil for the other schemes.
        public var hmac: HMACOptions?
        /// An RFC 6901 JSON pointer (e.g. `/id`) to the event id in the body, instead of the
        /// scheme's id header. Default nil; a `stripe` source without one reads `/id`.
        public var idPointer: String?
        /// An RFC 6901 JSON pointer (e.g. `/data/object/id`) to the key whose events are
        /// forwarded in the order received: a later event never overtakes an earlier one
        /// with the same key that is still being forwarded. Default nil: no ordering.
        public var orderBy: String?
        /// Verify-then-act (`verify.upstream` and `verify.path`): each forward first fetches
        /// the resource's current state and carries it with the event. Default nil.
        public var currentState: CurrentState?
        /// For `github` and `hmac` (their signature covers no timestamp): how long a second
        /// event with the same signed body is a repeat, whatever its id header says. Default
        /// 24 h (at most `retention.webhook_events`).
        public var replayWindow: Duration

        /// Creates a source; every default is what an absent config key means.
        public init(
            name: String,
            scheme: Scheme,
            secrets: [Secret],
            tolerance: Duration = .seconds(300),
            forwardTo: String? = nil,
            forwardSecret: Secret? = nil,
            hmac: HMACOptions? = nil,
            idPointer: String? = nil,
            orderBy: String? = nil,
            currentState: CurrentState? = nil,
            replayWindow: Duration = .seconds(86_400)
        ) {
            self.name = name
            self.scheme = scheme
            self.secrets = secrets
            self.tolerance = tolerance
            self.forwardTo = forwardTo
            self.forwardSecret = forwardSecret
            self.hmac = hmac
            self.idPointer = idPointer
            self.orderBy = orderBy
            self.currentState = currentState
            self.replayWindow = replayWindow
        }
    }

    /// The Prometheus metrics at `GET /metrics` (docs/metrics.md).
    public struct Metrics: Sendable, Hashable {
        /// Whether metrics are kept and served. Default true; false removes `/metrics` and
        /// every metric's cost from the proxy's path.
        public var enabled = true

        /// Creates the default metrics settings.
        public init() {}
    }

    /// The audit trail of proxied requests (`GET /v1/requests`).
    ///
    /// ```yaml
    /// audit: { enabled: true, retention: 7d, max_size: 1GiB }
    /// ```
    public struct Audit: Sendable, Hashable {
        /// Whether every proxied request is recorded. Default true.
        public var enabled = true
        /// How long a record is kept. Default 7 days.
        public var retention: Duration = .seconds(7 * 86_400)
        /// The audit trail's size budget in bytes (estimated; see docs/audit.md); past it the
        /// oldest records are deleted. Default 1 GiB.
        public var maxSize: Int = 1 << 30

        /// Creates the default audit settings.
        public init() {}
    }

    /// When incidents close (docs/incidents.md).
    ///
    /// ```yaml
    /// incidents: { close_after: 5m }
    /// ```
    public struct Incidents: Sendable, Hashable {
        /// How long an upstream must stay healthy before its incident closes; a relapse sooner
        /// stays in the same incident. Default 5 minutes; 1 second to 24 hours.
        public var closeAfter: Duration = .seconds(300)

        /// Creates the default incident settings.
        public init() {}
    }

    /// A place alerts are sent to, in its format (see ``AlertRoute``).
    public typealias AlertSink = AlertRoute

    /// Server settings.
    public var server = Server()
    /// Storage settings.
    public var storage = Storage.default
    /// Consumers; none means open mode (allowed on loopback only).
    public var consumers: [Consumer] = []
    /// Upstreams in file order.
    public var upstreams: [UpstreamConfig] = []
    /// Delivery settings.
    public var deliveries = Deliveries()
    /// Webhook sources in file order.
    public var webhooks: [WebhookSource] = []
    /// Alert sinks.
    public var alerts: [AlertSink] = []
    /// Metrics settings.
    public var metrics = Metrics()
    /// Log redaction settings.
    public var logging = LoggingOptions()
    /// Trace export settings.
    public var telemetry = Telemetry()
    /// The audit trail.
    public var audit = Audit()
    /// How long finished deliveries and inbox events are kept.
    public var retention = Retention()
    /// When incidents close.
    public var incidents = Incidents()

    /// Creates an empty config with every default.
    public init() {}

    /// The upstream named `name`, if configured.
    public func upstream(named name: String) -> UpstreamConfig? {
        upstreams.first { $0.name == name }
    }
}
