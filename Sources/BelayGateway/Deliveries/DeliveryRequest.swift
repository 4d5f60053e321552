import BelayHTTP
import BelayStore
import Crypto
import Foundation
import HTTPTypes
import Synchronization

/// The body of `POST /v1/deliveries`, checked field by field.
///
/// ```json
/// {"upstream": "payments", "method": "POST", "path": "/v1/charges",
///  "headers": {"Content-Type": "application/json"},
///  "body": {"amount": 1000},            // any JSON value but a string is sent as JSON;
///                                       // a string is base64 of the raw bytes to send
///  "idempotency_key": "order-42",       // or the Idempotency-Key header; else generated
///  "require_ack": false, "not_before": "2026-11-23T10:00:00Z"}
/// ```
struct DeliveryRequest {
    /// A field at fault, as problem+json reports it.
    struct Problem: Error {
        var code: ProblemCode
        var field: String
        var detail: String
    }

    /// Headers a queued request may not carry: Belay sets or manages them.
    static let refusedHeaders: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
        "proxy-connection",
    ]

    /// Reads and checks `data`; the key header, if sent, is the caller's idempotency key.
    ///
    /// `mayUse` says whether the caller may send to an upstream (`proxy:<upstream>`). It is
    /// asked before the name is looked up, so an upstream the caller may not use and one that
    /// does not exist are the same `403`, and an unknown name is answered with only the
    /// upstreams the caller may use: nothing tells a caller another upstream's name.
    static func parse(
        _ data: Data,
        keyHeader: String?,
        config: GatewayConfig,
        now: Date,
        id: String,
        mayUse: (String) -> Bool
    ) -> Result<NewDelivery, Problem> {
        func problem(
            _ field: String,
            _ detail: String,
            _ code: ProblemCode = .invalidRequest
        ) -> Result<NewDelivery, Problem> {
            .failure(Problem(code: code, field: field, detail: detail))
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) else {
            return problem("/", "the body must be a JSON object")
        }
        guard let fields = object as? [String: Any] else {
            return problem("/", "the body must be a JSON object, not \(Self.kind(of: object))")
        }
        let known: Set<String> = [
            "upstream", "method", "path", "headers", "body", "idempotency_key", "require_ack", "not_before",
            "ordering_key",
        ]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            return problem(
                "/\(unknown)",
                "unknown field '\(unknown)'; expected one of \(known.sorted().joined(separator: ", "))"
            )
        }

        guard let upstream = fields["upstream"] as? String, !upstream.isEmpty else {
            return problem("/upstream", "upstream is required: the name of a configured upstream")
        }
        guard mayUse(upstream) else {
            return problem(
                "/upstream",
                "this API key lacks the scope proxy:\(upstream) needed to send to it",
                .forbidden
            )
        }
        guard config.upstream(named: upstream) != nil else {
            let usable = config.upstreams.map(\.name).filter(mayUse)
            let names = usable.isEmpty ? "none this API key may use" : usable.joined(separator: ", ")
            return problem(
                "/upstream",
                "no upstream named '\(upstream)' is configured (have: \(names))",
                .unknownUpstream
            )
        }

        guard let method = fields["method"] as? String, !method.isEmpty else {
            return problem("/method", "method is required, e.g. POST")
        }
        guard HTTPRequest.Method(method) != nil, method.allSatisfy({ $0.isUppercase || $0 == "-" }) else {
            return problem("/method", "method must be an upper-case HTTP method such as POST or PUT (got '\(method)')")
        }

        guard let target = fields["path"] as? String, !target.isEmpty else {
            return problem("/path", "path is required: the path below the upstream's base URL, e.g. /v1/charges")
        }
        guard target.hasPrefix("/") else {
            return problem("/path", "path must start with '/' (got '\(target)')")
        }
        if let problemText = Self.requestTargetProblem(target) {
            return problem("/path", problemText)
        }
        let pathOnly = String(target.prefix { $0 != "?" })
        if case .failure(let rejection) = ProxyPath.split("/proxy/\(upstream)\(pathOnly)") {
            return problem("/path", rejection.description)
        }

        var headers: [DeliveryHeader] = []
        if let value = fields["headers"] {
            guard let map = value as? [String: Any] else {
                return problem("/headers", "headers must be an object of header names to string values")
            }
            for name in map.keys.sorted() {
                guard let text = map[name] as? String else {
                    return problem("/headers/\(name)", "a header value must be a string")
                }
                guard HTTPField.Name(name) != nil, HTTPField.isValidValue(text) else {
                    return problem("/headers/\(name)", "not a valid HTTP header name and value")
                }
                guard !refusedHeaders.contains(name.lowercased()) else {
                    return problem("/headers/\(name)", "\(name) is set by Belay and may not be given")
                }
                headers.append(DeliveryHeader(name: name, value: text))
            }
        }

        var body: Data?
        if let value = fields["body"], !(value is NSNull) {
            if let text = value as? String {
                guard let bytes = Data(base64Encoded: text) else {
                    return problem(
                        "/body",
                        "a string body must be base64 of the bytes to send; send JSON as an object or array"
                    )
                }
                body = bytes
            } else {
                guard
                    let json = try? JSONSerialization.data(
                        withJSONObject: value,
                        // Sorted: the same payload always encodes, and fingerprints, alike.
                        options: [.fragmentsAllowed, .withoutEscapingSlashes, .sortedKeys]
                    )
                else { return problem("/body", "the body could not be encoded as JSON") }
                body = json
                if !headers.contains(where: { $0.name.lowercased() == "content-type" }) {
                    headers.append(DeliveryHeader(name: "Content-Type", value: "application/json"))
                }
            }
        }

        var callerKey = keyHeader.map(IdempotencyKey.unquote)
        if let value = fields["idempotency_key"] {
            guard let key = value as? String else { return problem("/idempotency_key", "must be a string") }
            if let header = callerKey, header != key {
                return problem(
                    "/idempotency_key",
                    "differs from the Idempotency-Key header; send one key, in either place"
                )
            }
            callerKey = key
        }
        if let key = callerKey {
            // Visible ASCII only (0x21-0x7E): no space, no control character (a NUL is text
            // PostgreSQL refuses), no quote.
            let visible = key.unicodeScalars.allSatisfy { (0x21...0x7E).contains($0.value) && $0 != "\"" }
            guard (1...255).contains(key.unicodeScalars.count), visible else {
                return problem("/idempotency_key", "must be 1 to 255 printable ASCII characters without spaces")
            }
        }

        // An upstream whose system confirms (`ack`) makes every delivery to it wait for that.
        var requireAck = config.upstream(named: upstream)?.ack != nil
        if let value = fields["require_ack"] {
            guard let flag = value as? Bool else { return problem("/require_ack", "must be true or false") }
            requireAck = requireAck || flag
        }

        var notBefore = now.adding(config.deliveries.schedule.first ?? .zero)
        var notBeforeText = ""
        if let value = fields["not_before"] {
            guard let text = value as? String, let date = RFC3339.date(text) else {
                return problem("/not_before", "must be an RFC 3339 date-time such as 2026-11-23T10:00:00Z")
            }
            notBefore = max(date, notBefore)
            notBeforeText = text
        }

        var orderingKey: String?
        if let value = fields["ordering_key"] {
            guard let text = value as? String, (1...255).contains(text.count),
                !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                return problem(
                    "/ordering_key",
                    "must be a string of 1 to 255 characters, none of them a control character"
                )
            }
            orderingKey = text
        }

        let key = callerKey ?? RandomID.uuidString()
        let fingerprint = Self.fingerprint(
            [upstream, method, target, notBeforeText, requireAck ? "ack" : "-", orderingKey ?? ""],
            headers: headers,
            body: body
        )

        return .success(
            NewDelivery(
                id: id,
                upstream: upstream,
                method: method,
                path: target,
                headers: headers,
                body: body,
                idempotencyKey: key,
                keyFromCaller: callerKey != nil,
                fingerprint: fingerprint,
                requireAck: requireAck,
                notBefore: notBefore,
                createdAt: now,
                orderingKey: orderingKey
            )
        )
    }

    /// A digest of a delivery's payload (its parts, headers and body), so a reused key with
    /// another payload is told apart from a repeat.
    static func fingerprint(_ parts: [String], headers: [DeliveryHeader], body: Data?) -> String {
        var digest = SHA256()
        for part in parts {
            digest.update(data: Data(part.utf8))
            digest.update(data: [0])
        }
        for header in headers {
            digest.update(data: Data("\(header.name.lowercased()):\(header.value)".utf8))
            digest.update(data: [0])
        }
        digest.update(data: body ?? Data())
        return digest.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The last id's time and sequence, so ids made in one millisecond still sort in the
    /// order they were made.
    private static let lastID = Mutex<(milliseconds: UInt64, sequence: UInt64)>((0, 0))

    /// A new delivery id: `dlv_` + the time in milliseconds (12 hex digits) + a sequence
    /// within that millisecond (4) + 12 random hex digits, so ids sort by creation time.
    static func newID(at date: Date) -> String {
        let now = UInt64(max(0, min((date.timeIntervalSince1970 * 1_000).rounded(), 2.8e14)))
        let (milliseconds, sequence) = lastID.withLock { last -> (UInt64, UInt64) in
            if now > last.milliseconds || last.sequence >= 0xffff {
                last = (max(now, last.milliseconds + (last.sequence >= 0xffff ? 1 : 0)), 0)
            } else {
                last.sequence += 1
            }
            return last
        }
        func hex(_ value: UInt64, _ width: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "dlv_" + hex(milliseconds, 12) + hex(sequence, 4) + hex(UInt64.random(in: 0...0xffff_ffff_ffff), 12)
    }

    /// Parses an RFC 3339 date-time, with or without fractional seconds.
    static func date(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        return try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true))
    }

    private static func kind(of value: Any) -> String {
        switch value {
        case is [Any]: "an array"
        case is String: "a string"
        case is NSNumber: "a number"
        case is NSNull: "null"
        default: "\(type(of: value))"
        }
    }
}

extension DeliveryRequest {
    /// Why `target` (a path with an optional query) cannot be sent as an HTTP request target
    /// (RFC 9112 §3.2, origin form): a byte outside `pchar`, `/` and `?` (a control
    /// character, a space, `"`, `#`, `<`, non-ASCII…), or a `%` not followed by two hex
    /// digits; nil when it can.
    static func requestTargetProblem(_ target: String) -> String? {
        let bytes = Array(target.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, bytes[index + 1].isHexDigit, bytes[index + 2].isHexDigit else {
                    return "path has an invalid percent-encoding at offset \(index): write '%' as %25"
                }
                index += 3
                continue
            }
            guard byte.isRequestTargetByte else {
                let shown =
                    byte < 0x20 || byte >= 0x7F
                    ? String(format: "0x%02X", byte) : "'\(Character(Unicode.Scalar(byte)))'"
                return "path holds \(shown) at offset \(index), which a request target may not: percent-encode it"
            }
            index += 1
        }
        return nil
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }

    private static let requestTargetPunctuation = Set("-._~!$&'()*+,;=:@/?".utf8)

    /// Unreserved, sub-delims, `:`, `@`, `/` and `?` (RFC 3986 `pchar` and `query`).
    fileprivate var isRequestTargetByte: Bool {
        switch self {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            Self.requestTargetPunctuation.contains(self)
        }
    }
}
