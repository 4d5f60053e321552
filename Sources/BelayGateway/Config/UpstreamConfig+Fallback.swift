import BelayHTTP
import Foundation
import HTTPTypes
import NIOCore
import Yams

extension UpstreamConfig {
    /// Whether the application can do without the upstream (`criticality`).
    public enum Criticality: String, Sendable, Hashable, CaseIterable {
        /// Its failures reach the caller (after retries, failover and stale answers). The default.
        case critical
        /// An optional dependency: it may fail open with its `fallback`.
        case optional
    }

    /// What happens to a write the upstream cannot take now (`degrade: { writes: … }`).
    public enum DegradeWrites: String, Sendable, Hashable, CaseIterable {
        /// The failure reaches the caller. The default.
        case fail
        /// A write sent with `Prefer: respond-async` is queued durably instead (`202`), and
        /// delivered by the queue once the upstream is back.
        case queue
    }

    /// The answer of an optional upstream that is down and has nothing stale cached:
    ///
    /// ```yaml
    /// criticality: optional
    /// fallback: { status: 200, body: '{"items":[]}', content_type: application/json }
    /// ```
    public struct Fallback: Sendable, Hashable {
        /// One header of the answer.
        public struct Header: Sendable, Hashable {
            /// Its name.
            public var name: String
            /// Its value.
            public var value: String
        }

        /// The status answered: 200–499. Default 200.
        public var status = 200
        /// The body answered, as written. Default empty.
        public var body = ""
        /// Its `Content-Type`: as written, else `application/json` for a body that is JSON and
        /// `text/plain; charset=utf-8` for another; none for an empty body.
        public var contentType: String?
        /// Other headers of the answer, in file order.
        public var headers: [Header] = []
        /// The methods it answers. Default `GET`, `HEAD`, `OPTIONS`: a write that failed is not
        /// answered as done unless the upstream's writes may be dropped (list them here).
        public var methods = ["GET", "HEAD", "OPTIONS"]

        /// Creates a fallback with the defaults.
        public init() {}

        /// The HTTP layer's fallback.
        var policy: UpstreamPolicy.Fallback {
            var fields = HTTPFields()
            for header in headers {
                if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
            }
            if let contentType { fields[.contentType] = contentType }
            // A 204 or 304 has no body, nor its length; a degraded answer is never kept by a cache.
            if ![204, 304].contains(status) { fields[.contentLength] = String(body.utf8.count) }
            if fields[.cacheControl] == nil { fields[.cacheControl] = "no-store" }
            return UpstreamPolicy.Fallback(
                status: HTTPResponse.Status(code: status),
                headers: fields,
                body: ByteBuffer(string: body),
                methods: Set(methods.map { HTTPRequest.Method($0) ?? .get })
            )
        }
    }
}

extension UpstreamConfigReader {
    /// The largest fallback body: an answer kept in memory for every upstream.
    static let maximumFallbackBody = 64 << 10

    /// Headers a fallback may not set: Belay sets the length, and `content_type` is its own key.
    static let fallbackReservedHeaders: Set<String> = [
        "content-length", "content-type", "transfer-encoding", "connection", "keep-alive", "upgrade", "trailer",
        "te", "proxy-connection",
    ]

    /// `criticality: critical | optional`.
    func readCriticality(_ node: Node, at path: String, _ reader: inout ConfigReader) -> UpstreamConfig.Criticality? {
        guard let text = reader.string(node, at: path) else { return nil }
        guard let criticality = UpstreamConfig.Criticality(rawValue: text) else {
            reader.report(path, node, "must be critical or optional (got '\(text)')")
            return nil
        }
        return criticality
    }

    /// `degrade: { writes: fail | queue }`.
    func readDegrade(_ node: Node, at path: String, _ reader: inout ConfigReader) -> UpstreamConfig.DegradeWrites? {
        var writes: UpstreamConfig.DegradeWrites?
        for (key, value) in reader.mapping(node, at: path, allowed: ["writes"]) ?? [] {
            guard let text = reader.string(value, at: "\(path).\(key)") else { continue }
            guard let mode = UpstreamConfig.DegradeWrites(rawValue: text) else {
                reader.report("\(path).\(key)", value, "must be queue or fail (got '\(text)')")
                continue
            }
            writes = mode
        }
        return writes
    }

    /// `fallback: { status, body, content_type, headers, methods }`.
    func readFallback(_ node: Node, at path: String, _ reader: inout ConfigReader) -> UpstreamConfig.Fallback? {
        var fallback = UpstreamConfig.Fallback()
        let allowed: Set = ["status", "body", "content_type", "headers", "methods"]
        guard let fields = reader.mapping(node, at: path, allowed: allowed) else { return nil }
        var valid = true
        for (key, value) in fields {
            let keyPath = "\(path).\(key)"
            switch key {
            case "status":
                guard let status = reader.int(value, at: keyPath, atLeast: 200, atMost: 499) else {
                    valid = false
                    continue
                }
                fallback.status = status
            case "body":
                guard value.scalar != nil, let body = reader.string(value, at: keyPath) else {
                    if value.scalar == nil {
                        reader.report(keyPath, value, #"must be a string: quote JSON, as in body: '{"items":[]}'"#)
                    }
                    valid = false
                    continue
                }
                guard body.utf8.count <= Self.maximumFallbackBody else {
                    reader.report(keyPath, value, "must be at most 64KiB (got \(body.utf8.count) bytes)")
                    valid = false
                    continue
                }
                fallback.body = body
            case "content_type":
                guard let type = reader.headerValue(value, at: keyPath) else {
                    valid = false
                    continue
                }
                guard type.contains("/") else {
                    reader.report(keyPath, value, "must be a media type such as application/json (got '\(type)')")
                    valid = false
                    continue
                }
                fallback.contentType = type
            case "headers":
                for (header, item) in reader.mapping(value, at: keyPath) ?? [] {
                    let headerPath = "\(keyPath).\(header)"
                    guard Self.isToken(header) else {
                        reader.report(headerPath, item, "is not a valid header name")
                        valid = false
                        continue
                    }
                    guard !Self.fallbackReservedHeaders.contains(header.lowercased()),
                        !header.lowercased().hasPrefix("belay-")
                    else {
                        let why =
                            header.lowercased() == "content-type"
                            ? "set it with \(path).content_type" : "Belay sets it (or it is hop-by-hop)"
                        reader.report(headerPath, item, "cannot be set here: \(why)")
                        valid = false
                        continue
                    }
                    guard let text = reader.headerValue(item, at: headerPath) else {
                        valid = false
                        continue
                    }
                    fallback.headers.append(.init(name: header, value: text))
                }
            case "methods":
                var methods: [String] = []
                for (index, item) in (reader.sequence(value, at: keyPath) ?? []).enumerated() {
                    guard let method = reader.string(item, at: "\(keyPath)[\(index)]") else { continue }
                    guard Self.isToken(method), method == method.uppercased(), HTTPRequest.Method(method) != nil else {
                        reader.report(
                            "\(keyPath)[\(index)]",
                            item,
                            "must be an HTTP method in capitals, such as GET (got '\(method)')"
                        )
                        valid = false
                        continue
                    }
                    if !methods.contains(method) { methods.append(method) }
                }
                if methods.isEmpty, reader.sequence(value, at: keyPath) != nil {
                    reader.report(keyPath, value, "must list at least one method (remove fallback to have none)")
                    valid = false
                }
                if !methods.isEmpty { fallback.methods = methods }
            default: break
            }
        }
        if [204, 205, 304].contains(fallback.status), !fallback.body.isEmpty {
            reader.report(
                "\(path).body",
                fields.first { $0.key == "body" }?.node,
                "must be empty: an HTTP \(fallback.status) answer has no body"
            )
            valid = false
        }
        if fallback.contentType == nil, !fallback.body.isEmpty {
            let json =
                (try? JSONSerialization.jsonObject(with: Data(fallback.body.utf8), options: [.fragmentsAllowed])) != nil
            fallback.contentType = json ? "application/json" : "text/plain; charset=utf-8"
        }
        return valid ? fallback : nil
    }
}
