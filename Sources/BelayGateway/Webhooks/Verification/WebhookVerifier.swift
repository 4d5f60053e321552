import Crypto
public import Foundation
public import HTTPTypes

/// Verifies that a webhook delivery comes from its provider, unchanged and recent, and
/// names its event id: the first step of `POST /webhooks/{source}`.
///
/// Built once per source from its config; ``verify(body:headers:now:)`` is pure and
/// synchronous: it checks the signature over the raw body bytes before anything parses the
/// body, compares MACs in constant time, then checks the signed timestamp against
/// `tolerance` both ways and extracts the event id.
///
/// ```swift
/// let verifier = try WebhookVerifier(source: config.webhooks[0])
/// switch verifier.verify(body: bytes, headers: request.headers, now: Date()) {
/// case .success(let webhook): inbox.store(id: webhook.eventID, body: bytes)
/// case .failure(let rejection): logger.info("rejected: \(rejection)")
/// }
/// ```
///
/// Schemes:
/// - `standard-webhooks`: `webhook-signature` holds space-separated `v1,<base64>` HMAC-SHA256
///   signatures of `{webhook-id}.{webhook-timestamp}.{body}` (keys: `whsec_` secrets,
///   base64-decoded) and `v1a,<base64>` ed25519 signatures of the same (keys: `whpk_`).
///   Event id: `webhook-id`.
/// - `stripe`: `Stripe-Signature: t=<unix>,v1=<hex>` with HMAC-SHA256 of `{t}.{body}`,
///   keyed by the `whsec_…` text itself. Event id: the body's `/id`.
/// - `github`: `X-Hub-Signature-256: sha256=<hex>` with HMAC-SHA256 of the body. Event id:
///   `X-GitHub-Delivery`.
/// - `hmac`: the configured header, algorithm, encoding and prefix over the body. Event id:
///   the configured `id_header`.
///
/// Any match passes: every signature in the header is tried against every configured
/// secret, so both sides can rotate. A configured `id_pointer` reads the event id from the
/// body in any scheme.
public struct WebhookVerifier: Sendable {
    /// The longest event id accepted, in UTF-8 bytes: 256.
    public static let maximumEventIDLength = 256
    /// The most signatures one delivery may carry: 16. Each is checked against every key,
    /// so a larger number is refused rather than spent CPU on.
    public static let maximumSignatures = 16

    /// The keys of each scheme, parsed once.
    enum Method: Sendable {
        case standardWebhooks([StandardWebhooksKey])
        case stripe([SymmetricKey])
        case github([SymmetricKey])
        case hmac([SymmetricKey], HMACScheme)
    }

    /// The parsed options of the `hmac` scheme.
    struct HMACScheme: Sendable {
        var header: HTTPField.Name
        var algorithm: GatewayConfig.WebhookSource.HMACOptions.Algorithm
        var encoding: GatewayConfig.WebhookSource.HMACOptions.Encoding
        var prefix: String
        var idHeader: HTTPField.Name?
    }

    /// What a valid signature established.
    struct SignatureMatch {
        /// The index of the secret or key that matched.
        var secretIndex: Int
        /// The signed Unix timestamp, if the scheme signs one.
        var timestamp: Int64?
        /// Where the timestamp came from, for messages: `webhook-timestamp`.
        var timestampOrigin: String = ""
        /// The header the event id is read from when no JSON pointer is configured.
        var eventIDHeader: HTTPField.Name?
    }

    /// The source's name.
    public let sourceName: String
    let method: Method
    let tolerance: Duration
    let idPointer: JSONPointer?

    /// Parses the source's secrets and options once.
    ///
    /// Throws the problems ``ConfigLoader`` reports for the same source (a config it loaded
    /// never throws here): a `standard-webhooks` secret that is not `whsec_`/`whpk_` base64
    /// of the right size, no secret at all, an invalid header name or JSON pointer, or an
    /// `hmac` source with neither `id_header` nor `id_pointer`.
    public init(source: GatewayConfig.WebhookSource) throws(ConfigError) {
        let path = "webhooks.\(source.name).verify"
        var issues: [ConfigIssue] = []
        if source.secrets.isEmpty {
            issues.append(ConfigIssue(path: "\(path).secret", message: "is required"))
        }
        var pointer: JSONPointer?
        if let text = source.idPointer {
            do {
                pointer = try JSONPointer(text)
            } catch {
                issues.append(ConfigIssue(path: "\(path).id_pointer", message: error.message))
            }
        }
        let symmetricKeys = source.secrets.map { SymmetricKey(data: Array($0.value.utf8)) }
        var method: Method?
        switch source.scheme {
        case .standardWebhooks:
            var keys: [StandardWebhooksKey] = []
            for (index, secret) in source.secrets.enumerated() {
                switch StandardWebhooksKey.parse(secret.value, allowPublicKey: true) {
                case .success(let key): keys.append(key)
                case .failure(let invalid):
                    issues.append(ConfigIssue(path: "\(path).secrets[\(index)]", message: invalid.message))
                }
            }
            method = .standardWebhooks(keys)
        case .stripe:
            method = .stripe(symmetricKeys)
            if pointer == nil { pointer = try? JSONPointer("/id") }
        case .github:
            method = .github(symmetricKeys)
        case .hmac:
            guard let options = source.hmac else {
                issues.append(ConfigIssue(path: "\(path).header", message: "is required for scheme hmac"))
                break
            }
            let header = HTTPField.Name(options.header)
            if header == nil {
                issues.append(
                    ConfigIssue(
                        path: "\(path).header",
                        message: "must be an HTTP header name (got '\(options.header)')"
                    )
                )
            }
            let idHeader = options.idHeader.flatMap { HTTPField.Name($0) }
            if let text = options.idHeader, idHeader == nil {
                issues.append(
                    ConfigIssue(path: "\(path).id_header", message: "must be an HTTP header name (got '\(text)')")
                )
            }
            if options.idHeader == nil && source.idPointer == nil {
                issues.append(
                    ConfigIssue(
                        path: "\(path).id_header",
                        message:
                            "is required for scheme hmac unless id_pointer is set: events are deduplicated by their id"
                    )
                )
            }
            if let header {
                method = .hmac(
                    symmetricKeys,
                    HMACScheme(
                        header: header,
                        algorithm: options.algorithm,
                        encoding: options.encoding,
                        prefix: options.prefix ?? "",
                        idHeader: idHeader
                    )
                )
            }
        }
        guard issues.isEmpty, let method else { throw ConfigError(issues: issues) }
        self.sourceName = source.name
        self.method = method
        self.tolerance = source.tolerance
        self.idPointer = pointer
    }

    /// Verifies one delivery: its signature over the raw `body`, then its signed timestamp
    /// against `now` (both ways, within the source's tolerance; a timestamp exactly at the
    /// tolerance passes), then its event id.
    ///
    /// - Parameters:
    ///   - body: the request body exactly as received, before any parsing or re-encoding.
    ///   - headers: the request's headers.
    ///   - now: the current time; pass the gateway clock's reading (tests pass fixed dates).
    /// - Returns: the event id and signed timestamp, or why the delivery is rejected.
    public func verify(
        body: some DataProtocol,
        headers: HTTPFields,
        now: Date
    ) -> Result<VerifiedWebhook, WebhookRejection> {
        let verified: Result<SignatureMatch, WebhookRejection>
        switch method {
        case .standardWebhooks(let keys):
            verified = verifyStandardWebhooks(keys: keys, body: body, headers: headers)
        case .stripe(let keys):
            verified = verifyStripe(keys: keys, body: body, headers: headers)
        case .github(let keys):
            verified = verifyGitHub(keys: keys, body: body, headers: headers)
        case .hmac(let keys, let scheme):
            verified = verifyHMAC(keys: keys, scheme: scheme, body: body, headers: headers)
        }
        let match: SignatureMatch
        switch verified {
        case .success(let value): match = value
        case .failure(let rejection): return .failure(rejection)
        }
        var signedAt: Date?
        if let timestamp = match.timestamp {
            if let rejection = checkTolerance(timestamp, origin: match.timestampOrigin, now: now) {
                return .failure(rejection)
            }
            signedAt = Date(timeIntervalSince1970: TimeInterval(timestamp))
        }
        return eventID(match: match, body: body, headers: headers).map {
            VerifiedWebhook(eventID: $0, signedAt: signedAt, secretIndex: match.secretIndex)
        }
    }

    // MARK: shared steps

    /// Rejects a signed timestamp further than the tolerance from `now`, either way.
    private func checkTolerance(_ timestamp: Int64, origin: String, now: Date) -> WebhookRejection? {
        let (seconds, attoseconds) = tolerance.components
        let allowed = Double(seconds) + Double(attoseconds) / 1e18
        let age = now.timeIntervalSince1970 - Double(timestamp)
        guard abs(age) > allowed else { return nil }
        let distance = Int64(min(abs(age), 9e15).rounded(.up))
        let limit = ConfigDuration.format(tolerance)
        let message =
            age > 0
            ? "\(origin) is \(distance) s old, beyond the \(limit) tolerance: a replayed or long-delayed delivery"
            : "\(origin) is \(distance) s in the future, beyond the \(limit) tolerance: the sender's clock is ahead"
        return WebhookRejection(code: .timestampOutsideTolerance, message: message)
    }

    /// The event id: at the JSON pointer when one is configured, else from the scheme's header.
    private func eventID(
        match: SignatureMatch,
        body: some DataProtocol,
        headers: HTTPFields
    ) -> Result<String, WebhookRejection> {
        let id: String
        let origin: String
        if let idPointer {
            origin = "the body's \(idPointer.description.isEmpty ? "whole document" : idPointer.description)"
            let target: JSONPointer.Target
            do {
                target = try idPointer.evaluate(in: Data(body))
            } catch {
                return .failure(
                    WebhookRejection(
                        code: .bodyNotJSON,
                        message: "the body is not JSON, so the event id cannot be read at \(idPointer)"
                    )
                )
            }
            switch target {
            case .string(let text), .integer(let text):
                id = text
            case .otherValue:
                return .failure(
                    WebhookRejection(code: .missingEventID, message: "\(origin) is not a string or an integer")
                )
            case .missing:
                return .failure(WebhookRejection(code: .missingEventID, message: "\(origin) does not exist"))
            }
        } else if let name = match.eventIDHeader {
            origin = "the \(name) header"
            guard let value = headers[name], !value.isEmpty else {
                return .failure(WebhookRejection(code: .missingEventID, message: "the \(name) header is missing"))
            }
            id = value
        } else {
            return .failure(WebhookRejection(code: .missingEventID, message: "no event id is configured"))
        }
        if id.isEmpty {
            return .failure(WebhookRejection(code: .missingEventID, message: "\(origin) is empty"))
        }
        if id.utf8.count > Self.maximumEventIDLength {
            return .failure(
                WebhookRejection(
                    code: .invalidEventID,
                    message: "\(origin) is longer than \(Self.maximumEventIDLength) bytes"
                )
            )
        }
        if id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return .failure(WebhookRejection(code: .invalidEventID, message: "\(origin) holds control characters"))
        }
        return .success(id)
    }

    /// The non-empty values of `name`, one per field line; nil when there are none.
    static func values(of name: HTTPField.Name, in headers: HTTPFields) -> [String]? {
        let values = headers[values: name].map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return values.isEmpty ? nil : values
    }

    /// The index of the first key whose MAC equals one of `candidates`, compared in constant time.
    static func firstMatch(macs: [[UInt8]], candidates: [[UInt8]]) -> Int? {
        for (index, mac) in macs.enumerated() {
            var matched = false
            for candidate in candidates {
                matched = ConstantTime.isEqual(mac, candidate) || matched
            }
            if matched { return index }
        }
        return nil
    }

    /// "does not match the configured secret", "matches none of the 2 configured secrets".
    static func noMatch(keyCount: Int, kind: String = "secret") -> String {
        keyCount == 1 ? "does not match the configured \(kind)" : "matches none of the \(keyCount) configured \(kind)s"
    }
}
