/// Why a webhook delivery was not accepted by ``WebhookVerifier``.
///
/// Callers switch on ``code`` and never match the message. The ``message`` names the
/// header (or body part) at fault and never contains a secret, a signature or the body, so
/// it can go into logs and problem details. Only `code.description` suits metric labels.
///
/// ```swift
/// switch verifier.verify(body: body, headers: request.headers, now: .now) {
/// case .success(let webhook): store(webhook.eventID, body)
/// case .failure(let rejection) where rejection.code == .bodyNotJSON: answer(400, rejection.message)
/// case .failure(let rejection): answer(401, rejection.message)
/// }
/// ```
public struct WebhookRejection: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of rejection this is. New codes may be added without breaking users.
    ///
    /// Every code but ``missingEventID``, ``invalidEventID`` and ``bodyNotJSON`` means the
    /// delivery is not authenticated (`signature-invalid`, 401); those three mean a correctly
    /// signed delivery Belay cannot deduplicate (`invalid-request`, 400).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case missingSignature = "missing-signature"
            case malformedSignature = "malformed-signature"
            case signatureMismatch = "signature-mismatch"
            case missingTimestamp = "missing-timestamp"
            case malformedTimestamp = "malformed-timestamp"
            case timestampOutsideTolerance = "timestamp-outside-tolerance"
            case missingEventID = "missing-event-id"
            case invalidEventID = "invalid-event-id"
            case bodyNotJSON = "body-not-json"
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// The signature header is absent or empty.
        public static let missingSignature = Code(.missingSignature)
        /// The signature header is present but holds no signature of a known form (no `v1,`
        /// or `v1a,` entry, no `t=` or `v1=` in `Stripe-Signature`, a missing prefix, text
        /// that is not hex or base64).
        public static let malformedSignature = Code(.malformedSignature)
        /// No signature in the header matches any configured secret or key: a forged or
        /// tampered delivery (body, id or timestamp changed), or a secret not configured.
        public static let signatureMismatch = Code(.signatureMismatch)
        /// The `webhook-timestamp` header is absent.
        public static let missingTimestamp = Code(.missingTimestamp)
        /// The `webhook-timestamp` header is not a whole number of Unix seconds.
        public static let malformedTimestamp = Code(.malformedTimestamp)
        /// The signature is valid but its signed timestamp is further from now than the
        /// tolerance, in the past (a replay or a long delay) or in the future (a clock ahead).
        public static let timestampOutsideTolerance = Code(.timestampOutsideTolerance)
        /// The event has no id to deduplicate by: the id header is absent, or the body has
        /// nothing (or no string or integer) at the id pointer.
        public static let missingEventID = Code(.missingEventID)
        /// The event id is longer than ``WebhookVerifier/maximumEventIDLength`` bytes or holds
        /// control characters.
        public static let invalidEventID = Code(.invalidEventID)
        /// The event id is to be read from the body by a JSON pointer, and the body is not JSON.
        public static let bodyNotJSON = Code(.bodyNotJSON)

        /// The code as a stable kebab-case string, e.g. `signature-mismatch`.
        public var description: String { base.rawValue }
    }

    /// Why the delivery was rejected.
    public var code: Code
    /// A sentence naming the header or body part at fault, e.g. `webhook-signature matches
    /// none of the 2 configured secrets`. Never contains secrets, signatures or the body.
    public var message: String

    /// Creates a rejection.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The code and the message, e.g. `missing-signature: the webhook-signature header is missing`.
    public var description: String { "\(code): \(message)" }
}
