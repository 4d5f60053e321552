/// The caller's request body failed while it was streamed to an upstream: the caller's
/// fault, not the upstream's.
///
/// ``UpstreamClient`` never counts it against the upstream (circuit breaker, outlier
/// ejection) and never retries it; the HTTP edge answers `413 payload-too-large` for
/// ``Code/tooLarge``, `400 invalid-request` for the others.
public struct RequestBodyError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. New codes may be added without breaking users.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case tooLarge = "too-large"
            case readFailed = "read-failed"
            case incomplete
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// The body grew past the limit.
        public static let tooLarge = Code(.tooLarge)
        /// Reading the body from the caller failed (the caller went away, say).
        public static let readFailed = Code(.readFailed)
        /// The attempt failed (its deadline passed, the connection broke) while the body was
        /// still arriving from the caller: the caller's pace, not the upstream's, decided it.
        public static let incomplete = Code(.incomplete)

        public var description: String { base.rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// The limit in bytes, for ``Code/tooLarge``.
    public var limit: Int?
    /// The error reading the body threw, for ``Code/readFailed``; how the attempt failed, for
    /// ``Code/incomplete``.
    public var underlying: (any Error)?

    /// Creates an error.
    public init(code: Code, limit: Int? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.limit = limit
        self.underlying = underlying
    }

    public var description: String {
        switch code {
        case .tooLarge: "the request body exceeds \(limit.map { "\($0) bytes" } ?? "the limit")"
        case .incomplete: "the request body was still arriving when the attempt failed"
        default: "the request body could not be read: \(underlying.map { "\(type(of: $0))" } ?? "unknown error")"
        }
    }
}
