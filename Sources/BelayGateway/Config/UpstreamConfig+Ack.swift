import Foundation

extension UpstreamConfig {
    /// How the other system confirms that a delivery went through (`upstreams.<name>.ack`).
    ///
    /// ```yaml
    /// ack:
    ///   webhook: payments                     # the inbox source whose events confirm
    ///   match: /data/object/metadata/order_id # JSON pointer to the delivery's idempotency key
    ///   timeout: 1h                           # no confirmation by then: sent again, same key
    ///   failure: { pointer: /type, values: [order.rejected] }   # optional: a rejection
    ///   poll: { path: "/v1/orders/{key}", every: 5m, until: [200] } # and/or: look it up
    /// ```
    ///
    /// Deliveries to the upstream always wait for it (`require_ack`): `delivered` after the
    /// 2xx, `acknowledged` once confirmed.
    public struct Ack: Sendable, Hashable {
        /// Confirmation by a verified inbox event.
        public struct Webhook: Sendable, Hashable {
            /// The `webhooks.<source>` whose events confirm.
            public var source: String
            /// The JSON pointer (RFC 6901) to the value that equals the delivery's idempotency
            /// key: a string, or a number compared as its JSON text.
            public var match: String
            /// Which events reject instead of confirm, if any.
            public var failure: Failure?

            /// Creates a webhook confirmation.
            public init(source: String, match: String, failure: Failure? = nil) {
                self.source = source
                self.match = match
                self.failure = failure
            }
        }

        /// An event whose value at `pointer` is one of `values` rejects the delivery: it is
        /// `dead`, with that value as the provider's reason, and an alert is raised.
        public struct Failure: Sendable, Hashable {
            /// The JSON pointer (RFC 6901) to the value that tells a rejection.
            public var pointer: String
            /// The values that mean rejected (numbers as their JSON text).
            public var values: [String]

            /// Creates a rejection rule.
            public init(pointer: String, values: [String]) {
                self.pointer = pointer
                self.values = values
            }
        }

        /// Confirmation by looking the order up: `GET path` (the delivery's idempotency key in
        /// place of `{key}`) through the upstream's policy, every `every` after the 2xx, until
        /// the provider answers one of `until`. The same lookup runs before a resend whose
        /// earlier send may have reached the provider (it timed out or was reset after it was
        /// sent, or the confirmation did not come): the order is only sent again if it is not there.
        public struct Poll: Sendable, Hashable {
            /// The path below the upstream's base path, with `{key}` where the key goes.
            public var path: String
            /// How long between lookups while a confirmation is awaited. Default 5 minutes.
            public var every: Duration
            /// The statuses that mean the order is there. Default `[200]`.
            public var until: Set<Int>

            /// Creates a lookup.
            public init(path: String, every: Duration = .seconds(300), until: Set<Int> = [200]) {
                self.path = path
                self.every = every
                self.until = until
            }

            /// The path for the delivery whose key is `key`: every byte of the key but the
            /// unreserved ones (RFC 3986: letters, digits, `-._~`) percent-encoded, so that it is one
            /// path segment or one query value whatever it holds, and a key `.` or `..` is not a dot
            /// segment a server would resolve (`/v1/orders/..` is `/v1`).
            public func path(forKey key: String) -> String {
                let unreserved = CharacterSet(
                    charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
                )
                var encoded = key.addingPercentEncoding(withAllowedCharacters: unreserved) ?? key
                if encoded.allSatisfy({ $0 == "." }) { encoded = String(repeating: "%2E", count: encoded.count) }
                return path.replacingOccurrences(of: "{key}", with: encoded)
            }
        }

        /// Confirmation by webhook.
        public var webhook: Webhook?
        /// Confirmation by looking the order up (and the lookup before a resend).
        public var poll: Poll?
        /// How long a confirmation is awaited after the 2xx; nil: `deliveries.ack_timeout`.
        public var timeout: Duration?

        /// Creates an `ack` section: a `webhook`, a `poll`, or both (whichever confirms first).
        public init(webhook: Webhook? = nil, poll: Poll? = nil, timeout: Duration? = nil) {
            self.webhook = webhook
            self.poll = poll
            self.timeout = timeout
        }
    }
}
