extension UpstreamConfig {
    /// How the other system confirms that a delivery went through (`upstreams.<name>.ack`).
    ///
    /// ```yaml
    /// ack:
    ///   webhook: payments                     # the inbox source whose events confirm
    ///   match: /data/object/metadata/order_id # JSON pointer to the delivery's idempotency key
    ///   timeout: 1h                           # no confirmation by then: sent again, same key
    ///   failure: { pointer: /type, values: [order.rejected] }   # optional: a rejection
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

        /// Confirmation by webhook. Required today; other ways (looking the order up) may
        /// come beside it.
        public var webhook: Webhook?
        /// How long a confirmation is awaited after the 2xx; nil: `deliveries.ack_timeout`.
        public var timeout: Duration?

        /// Creates an `ack` section.
        public init(webhook: Webhook? = nil, timeout: Duration? = nil) {
            self.webhook = webhook
            self.timeout = timeout
        }
    }
}
