/// What a ``TestUpstream`` does with each request to a path: a status sequence, error
/// ratio, latency, resets, hangs, `Retry-After`, quotas.
///
/// Behaviors are values: set one with ``TestUpstream/setBehavior(_:for:)`` (in process)
/// or `PUT /__upstream/behavior?path=/x` with the JSON form (from scripts and `belay demo`).
public struct UpstreamBehavior: Sendable, Codable, Hashable {
    /// Statuses answered in order, one per request, before falling back to ``status``.
    public var statuses: [Int]
    /// Start the sequence again when it is used up. Default false.
    public var repeats: Bool
    /// The status once the sequence is used up. Default 200.
    public var status: Int
    /// The share of requests (`0...1`) answered with ``errorStatus`` instead. Default 0.
    public var errorRate: Double
    /// The status of random errors. Default 503.
    public var errorStatus: Int
    /// How long to wait before answering, in milliseconds. Default 0.
    public var latencyMilliseconds: Int
    /// The `Retry-After` header sent with non-2xx answers, if any.
    public var retryAfter: String?
    /// Close the connection without answering (a reset, as a client sees it). Default false.
    public var reset: Bool
    /// Never answer (until the client gives up or the server stops). Default false.
    public var hang: Bool
    /// The body of 2xx answers. Default `{"ok":true}`.
    public var body: String
    /// The body of other answers, if set. Default `{"error":"simulated <status>"}`.
    public var errorBody: String?
    /// Send the body in pieces without `Content-Length` (chunked). Default false.
    public var chunked: Bool
    /// Send the body chunked, one byte at a time, pausing this long (milliseconds) before
    /// each byte: an answer whose head comes at once and whose body trickles in. Default 0.
    public var trickleMilliseconds: Int
    /// Extra headers on every answer, e.g. `["Set-Cookie": "session=1"]`. Default none.
    public var headers: [String: String]
    /// Answer 429 with `RateLimit` headers past `quota` requests per `quotaWindowSeconds`.
    public var quota: Int?
    /// The quota's window in seconds. Default 60.
    public var quotaWindowSeconds: Int
    /// Every this many requests (the 10th, 20th, … for 10), one is slow: it waits
    /// ``slowMilliseconds`` more before answering. Default none.
    public var slowEvery: Int?
    /// How much longer the slow requests of ``slowEvery`` wait, in milliseconds. Default 0.
    public var slowMilliseconds: Int
    /// A fixed capacity, if set: at most this many requests are served at once (each taking
    /// ``latencyMilliseconds`` once it has a worker), up to ``capacityQueue`` more wait in
    /// arrival order, and the rest are answered 429 at once. A provider whose real capacity is
    /// unknown to its callers. Default none.
    public var capacity: Int?
    /// Requests waiting for a worker of ``capacity`` at most. Default 0.
    public var capacityQueue: Int

    /// Creates a behavior; the defaults answer 200 at once.
    public init(
        statuses: [Int] = [],
        repeats: Bool = false,
        status: Int = 200,
        errorRate: Double = 0,
        errorStatus: Int = 503,
        latencyMilliseconds: Int = 0,
        retryAfter: String? = nil,
        reset: Bool = false,
        hang: Bool = false,
        body: String = #"{"ok":true}"#,
        errorBody: String? = nil,
        chunked: Bool = false,
        trickleMilliseconds: Int = 0,
        headers: [String: String] = [:],
        quota: Int? = nil,
        quotaWindowSeconds: Int = 60,
        slowEvery: Int? = nil,
        slowMilliseconds: Int = 0,
        capacity: Int? = nil,
        capacityQueue: Int = 0
    ) {
        self.statuses = statuses
        self.repeats = repeats
        self.status = status
        self.errorRate = errorRate
        self.errorStatus = errorStatus
        self.latencyMilliseconds = latencyMilliseconds
        self.retryAfter = retryAfter
        self.reset = reset
        self.hang = hang
        self.body = body
        self.errorBody = errorBody
        self.chunked = chunked
        self.trickleMilliseconds = trickleMilliseconds
        self.headers = headers
        self.quota = quota
        self.quotaWindowSeconds = quotaWindowSeconds
        self.slowEvery = slowEvery
        self.slowMilliseconds = slowMilliseconds
        self.capacity = capacity
        self.capacityQueue = capacityQueue
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = UpstreamBehavior()
        statuses = try container.decodeIfPresent([Int].self, forKey: .statuses) ?? defaults.statuses
        repeats = try container.decodeIfPresent(Bool.self, forKey: .repeats) ?? defaults.repeats
        status = try container.decodeIfPresent(Int.self, forKey: .status) ?? defaults.status
        errorRate = try container.decodeIfPresent(Double.self, forKey: .errorRate) ?? defaults.errorRate
        errorStatus = try container.decodeIfPresent(Int.self, forKey: .errorStatus) ?? defaults.errorStatus
        latencyMilliseconds =
            try container.decodeIfPresent(Int.self, forKey: .latencyMilliseconds) ?? defaults.latencyMilliseconds
        retryAfter = try container.decodeIfPresent(String.self, forKey: .retryAfter)
        reset = try container.decodeIfPresent(Bool.self, forKey: .reset) ?? defaults.reset
        hang = try container.decodeIfPresent(Bool.self, forKey: .hang) ?? defaults.hang
        body = try container.decodeIfPresent(String.self, forKey: .body) ?? defaults.body
        errorBody = try container.decodeIfPresent(String.self, forKey: .errorBody)
        chunked = try container.decodeIfPresent(Bool.self, forKey: .chunked) ?? defaults.chunked
        trickleMilliseconds =
            try container.decodeIfPresent(Int.self, forKey: .trickleMilliseconds) ?? defaults.trickleMilliseconds
        headers = try container.decodeIfPresent([String: String].self, forKey: .headers) ?? defaults.headers
        quota = try container.decodeIfPresent(Int.self, forKey: .quota)
        quotaWindowSeconds =
            try container.decodeIfPresent(Int.self, forKey: .quotaWindowSeconds) ?? defaults.quotaWindowSeconds
        slowEvery = try container.decodeIfPresent(Int.self, forKey: .slowEvery)
        slowMilliseconds =
            try container.decodeIfPresent(Int.self, forKey: .slowMilliseconds) ?? defaults.slowMilliseconds
        capacity = try container.decodeIfPresent(Int.self, forKey: .capacity)
        capacityQueue = try container.decodeIfPresent(Int.self, forKey: .capacityQueue) ?? defaults.capacityQueue
    }

    /// Always this status.
    public static func always(_ status: Int) -> UpstreamBehavior { UpstreamBehavior(status: status) }

    /// These statuses once, in order, then 200.
    public static func sequence(_ statuses: [Int], then status: Int = 200) -> UpstreamBehavior {
        UpstreamBehavior(statuses: statuses, status: status)
    }

    /// A hard outage: every request is reset.
    public static var down: UpstreamBehavior { UpstreamBehavior(reset: true) }
}

/// One request as the test upstream received it.
public struct RecordedRequest: Sendable, Hashable, Codable {
    /// The method, e.g. `POST`.
    public var method: String
    /// The path with its query.
    public var path: String
    /// Every header, lowercased names, in order; `host` is the request's authority.
    public var headers: [String: String]
    /// The body's size in bytes.
    public var bodySize: Int
    /// What the upstream answered (0 for a reset or hang).
    public var status: Int
    /// The body as text (invalid UTF-8 replaced), up to its first 64 KiB.
    public var body: String? = nil

    /// The value of a header, by case-insensitive name.
    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}
