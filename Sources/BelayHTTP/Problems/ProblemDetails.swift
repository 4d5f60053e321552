public import Foundation

/// An RFC 9457 problem document with Belay's extensions, served as `application/problem+json`.
///
/// ```swift
/// let problem = ProblemDetails(.circuitOpen, detail: "payments is failing", requestID: id, upstream: "payments")
/// let bytes = problem.json()
/// ```
public struct ProblemDetails: Sendable, Hashable, Codable {
    /// The media type of problem documents.
    public static let mediaType = "application/problem+json"

    /// A URI naming the problem type.
    public var type: String
    /// A short, stable summary of the type.
    public var title: String
    /// The HTTP status.
    public var status: Int
    /// What went wrong this time, for a person.
    public var detail: String
    /// The request this is about, e.g. `/proxy/payments/v1/charges`.
    public var instance: String?
    /// The contract's code, e.g. `circuit-open`.
    public var code: String
    /// The id of the request (also in `Belay-Request-Id`).
    public var requestID: String
    /// Whether sending the same request again later may succeed.
    public var retryable: Bool
    /// The upstream concerned, if any.
    public var upstream: String?
    /// The attempts made, if any.
    public var attempts: Int?
    /// The field at fault, for invalid input (a JSON pointer or a header name).
    public var field: String?

    enum CodingKeys: String, CodingKey {
        case type, title, status, detail, instance, code
        case requestID = "request_id"
        case retryable, upstream, attempts, field
    }

    /// Creates a problem of the given contract code.
    public init(
        _ code: ProblemCode,
        detail: String,
        requestID: String,
        instance: String? = nil,
        upstream: String? = nil,
        attempts: Int? = nil,
        field: String? = nil
    ) {
        self.type = code.type
        self.title = code.title
        self.status = code.status
        self.detail = detail
        self.instance = instance
        self.code = code.name
        self.requestID = requestID
        self.retryable = code.retryable
        self.upstream = upstream
        self.attempts = attempts
        self.field = field
    }

    /// The document as JSON bytes (keys sorted, so output is stable).
    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data(#"{"status":500,"title":"unencodable problem"}"#.utf8)
    }
}
