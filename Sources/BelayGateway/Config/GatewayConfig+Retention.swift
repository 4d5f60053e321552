extension GatewayConfig {
    /// How long finished work is kept before it is deleted (``RetentionService``).
    ///
    /// ```yaml
    /// retention: { deliveries: 30d, webhook_events: 30d, incidents: 365d }
    /// ```
    public struct Retention: Sendable, Hashable {
        /// How long a finished delivery (delivered without an acknowledgement required,
        /// acknowledged, cancelled, dead) is kept after its last update, with its attempts.
        /// At least `deliveries.key_retention`. Default 30 days.
        public var deliveries: Duration = .seconds(30 * 86_400)
        /// How long an inbox event (its raw body and headers) is kept after it arrived; an
        /// event whose forward is unfinished is kept until it finishes. At least every
        /// source's `replay_window`. Default 30 days.
        public var webhookEvents: Duration = .seconds(30 * 86_400)
        /// How long a closed incident (its timeline and impact) is kept after it closed: the
        /// record a postmortem, or a regulator, asks for. An open one is never deleted.
        /// Default 365 days.
        public var incidents: Duration = .seconds(365 * 86_400)

        /// Creates the default retention.
        public init() {}
    }
}
