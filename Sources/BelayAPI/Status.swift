public import Foundation

/// `GET /v1/status`: what the status page shows.
public struct StatusView: Codable, Sendable, Equatable {
    public var generatedAt: Date
    public var upstreams: [UpstreamHealthView]
    public var deliveries: Deliveries
    public var webhooks: [WebhookSource]
    /// The recent alerts, newest first.
    public var alerts: [Alert]

    public init(
        generatedAt: Date,
        upstreams: [UpstreamHealthView],
        deliveries: Deliveries,
        webhooks: [WebhookSource],
        alerts: [Alert]
    ) {
        self.generatedAt = generatedAt
        self.upstreams = upstreams
        self.deliveries = deliveries
        self.webhooks = webhooks
        self.alerts = alerts
    }

    enum CodingKeys: String, CodingKey {
        case upstreams, deliveries, webhooks, alerts
        case generatedAt = "generated_at"
    }

    /// The delivery queue: counts by status, and the dead-letter queue.
    public struct Deliveries: Codable, Sendable, Equatable {
        /// Whether the store could be read for the counts.
        public var available: Bool
        /// By status; absent when the store could not be read.
        public var counts: [String: Int]?
        public var deadLetter: DeadLetter

        public struct DeadLetter: Codable, Sendable, Equatable {
            public var count: Int
            /// `/v1/deliveries?status=dead`.
            public var link: String

            public init(count: Int, link: String) {
                self.count = count
                self.link = link
            }
        }

        public init(available: Bool, counts: [String: Int]?, deadLetter: DeadLetter) {
            self.available = available
            self.counts = counts
            self.deadLetter = deadLetter
        }

        enum CodingKeys: String, CodingKey {
            case available, counts
            case deadLetter = "dead_letter"
        }
    }

    /// A webhook source and where its events go.
    public struct WebhookSource: Codable, Sendable, Equatable {
        public var source: String
        /// `standard-webhooks`, `stripe`, `github` or `hmac`.
        public var scheme: String
        /// `null` when it does not forward.
        @ExplicitNull public var forwardsTo: String?
        /// `/v1/webhooks/events?source=…`.
        public var link: String

        public init(source: String, scheme: String, forwardsTo: String?, link: String) {
            self.source = source
            self.scheme = scheme
            self.forwardsTo = forwardsTo
            self.link = link
        }

        enum CodingKeys: String, CodingKey {
            case source, scheme, link
            case forwardsTo = "forwards_to"
        }
    }

    /// A recent alert, with how often it repeated.
    public struct Alert: Codable, Sendable, Equatable {
        public var kind: String
        /// `info`, `warning` or `critical`.
        public var severity: String
        public var summary: String
        @ExplicitNull public var upstream: String?
        @ExplicitNull public var since: Date?
        public var at: Date
        public var lastAt: Date
        public var repeats: Int
        @ExplicitNull public var link: String?

        public init(
            kind: String,
            severity: String,
            summary: String,
            upstream: String?,
            since: Date?,
            at: Date,
            lastAt: Date,
            repeats: Int,
            link: String?
        ) {
            self.kind = kind
            self.severity = severity
            self.summary = summary
            self.upstream = upstream
            self.since = since
            self.at = at
            self.lastAt = lastAt
            self.repeats = repeats
            self.link = link
        }

        enum CodingKeys: String, CodingKey {
            case kind, severity, summary, upstream, since, at, repeats, link
            case lastAt = "last_at"
        }
    }
}
