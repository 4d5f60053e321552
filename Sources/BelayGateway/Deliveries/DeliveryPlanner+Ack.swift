extension DeliveryPlanner {
    /// Creates a planner from the `deliveries` config and each upstream's `ack` (its timeout
    /// overrides `deliveries.ack_timeout` for that upstream's deliveries).
    public init(_ config: GatewayConfig, jitter: Double = 0.1) {
        self.init(config.deliveries, jitter: jitter)
        for upstream in config.upstreams {
            guard let ack = upstream.ack else { continue }
            if let timeout = ack.timeout { ackTimeouts[upstream.name] = timeout }
            if let source = ack.webhook?.source { ackSources[upstream.name] = source }
        }
    }
}
