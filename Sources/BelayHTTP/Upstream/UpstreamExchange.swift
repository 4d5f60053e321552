public import AsyncHTTPClient
public import HTTPTypes
public import NIOCore

/// A request to send to an upstream, already checked and cleaned by the caller.
public struct UpstreamRequest: Sendable {
    /// How the body is held.
    public enum Body: Sendable {
        /// No body.
        case none
        /// The whole body in memory: the request can be retried.
        case buffered(ByteBuffer)
        /// A body streamed through as it arrives (e.g. `.stream(request.body, length: …)`):
        /// sent once, never retried.
        case stream(HTTPClientRequest.Body)
    }

    /// The method.
    public var method: HTTPRequest.Method
    /// The path below the upstream's base path, starting with `/`, already normalised.
    public var path: String
    /// The raw query string, without `?`.
    public var query: String?
    /// End-to-end headers to forward (hop-by-hop ones already removed).
    public var headers: HTTPFields
    /// The body.
    public var body: Body
    /// How far the caller's body has got, when ``body`` streams the caller's body as it
    /// arrives (``LimitedBody/progress``). An attempt that fails while it is still arriving is
    /// the caller's doing (``RequestBodyError/Code/incomplete``): not counted against the
    /// upstream by the breaker, outlier ejection or the health model, and never retried.
    public var bodyProgress: RequestBodyProgress?

    /// Creates a request.
    public init(
        method: HTTPRequest.Method,
        path: String,
        query: String? = nil,
        headers: HTTPFields = [:],
        body: Body = .none
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// A request target's path and query: `/v1/orders?x=1` → (`/v1/orders`, `x=1`).
    public static func pathAndQuery(of target: String) -> (path: String, query: String?) {
        guard let mark = target.firstIndex(of: "?") else { return (target, nil) }
        return (String(target[..<mark]), String(target[target.index(after: mark)...]))
    }

    /// Whether the body is streamed (sent once, never retried).
    var isStreamed: Bool {
        if case .stream = body { return true }
        return false
    }

    /// Whether the method is safe (RFC 9110 §9.2.1: `GET`, `HEAD`, `OPTIONS`, `TRACE`): only
    /// reads, so two attempts of it may run at once (hedging).
    public var isSafeMethod: Bool {
        switch method {
        case .get, .head, .options, .trace: true
        default: false
        }
    }

    /// Whether repeating the request cannot cause a second effect by itself (RFC 9110 §9.2.2).
    public var isIdempotentMethod: Bool {
        switch method {
        case .get, .head, .options, .trace, .put, .delete: true
        default: false
        }
    }
}

/// An upstream's answer: the status and headers, and the body in memory or still streaming.
public struct UpstreamResponse: Sendable {
    /// How the body is held.
    public enum Body: Sendable {
        /// Read into memory: answers up to 1 MiB that a retry may discard or that may be cached.
        case buffered(ByteBuffer)
        /// Still arriving from the upstream.
        case stream(HTTPClientResponse.Body)
    }

    /// The status.
    public var status: HTTPResponse.Status
    /// The headers as the upstream sent them.
    public var headers: HTTPFields
    /// The body.
    public var body: Body
    /// The endpoint that answered.
    public var endpoint: UpstreamEndpoint
}
