import AsyncHTTPClient
import BelayAPI
public import Foundation
import NIOCore
import NIOHTTP1

/// Calls a running gateway's management API (what `belay deliveries …` uses).
///
/// ```swift
/// let client = ManagementClient(baseURL: "http://127.0.0.1:8080", apiKey: nil)
/// let answer = try await client.get("/v1/deliveries?status=dead")
/// ```
public struct ManagementClient: Sendable {
    /// An answer: the status and the body, read with ``decode(_:)`` as one of the contract's types.
    public struct Answer: Sendable {
        /// The HTTP status.
        public var status: Int
        /// The raw body.
        public var body: Data

        /// The body as one of the contract's types (``BelayAPI``).
        /// - Throws: `DecodingError` naming the key when the answer is not of that shape.
        public func decode<Value: Decodable>(_ type: Value.Type) throws -> Value {
            try ManagementJSON.decoder().decode(type, from: body)
        }

        /// A one-line description of a problem+json answer.
        public var problemSummary: String {
            guard let problem = try? decode(ProblemSummary.self) else { return "HTTP \(status)" }
            return "\(problem.code ?? "HTTP \(status)"): \(problem.detail ?? "")"
        }

        /// The two fields of a problem a one-line summary shows.
        private struct ProblemSummary: Decodable {
            var code: String?
            var detail: String?
        }
    }

    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    public var baseURL: String
    /// The API key sent as `Authorization: Bearer …`, if the gateway has consumers.
    public var apiKey: String?

    /// Creates a client.
    public init(baseURL: String, apiKey: String?) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
    }

    /// `path` with a query of the `parameters` that have a value, each percent-encoded
    /// (`path("/v1/deliveries", [("status", "dead"), ("upstream", nil)])`).
    public static func path(_ path: String, _ parameters: [(String, String?)]) -> String {
        let query = parameters.compactMap { name, value in value.map { "\(name)=\(escaped($0))" } }
        return query.isEmpty ? path : path + "?" + query.joined(separator: "&")
    }

    /// `value` with everything but RFC 3986's unreserved characters percent-encoded: safe as a
    /// path segment (an id) or a query value, whatever it holds.
    public static func escaped(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }

    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )

    /// `GET path`.
    public func get(_ path: String) async throws -> Answer {
        try await call(.GET, path)
    }

    /// `POST path` with no body.
    public func post(_ path: String) async throws -> Answer {
        try await call(.POST, path)
    }

    /// `POST path` with a JSON body.
    public func post(_ path: String, json: Data) async throws -> Answer {
        try await call(.POST, path, json: json)
    }

    /// `DELETE path`.
    public func delete(_ path: String) async throws -> Answer {
        try await call(.DELETE, path)
    }

    private func call(_ method: HTTPMethod, _ path: String, json: Data? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: json))
        }
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), body: Data(body.readableBytesView))
    }
}
