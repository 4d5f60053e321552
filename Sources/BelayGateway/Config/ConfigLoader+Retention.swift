import Yams

extension ConfigLoader {
    /// `retention: { deliveries: 30d, webhook_events: 30d, incidents: 365d }`.
    func readRetention(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        let allowed: Set = ["deliveries", "webhook_events", "incidents"]
        for (key, value) in reader.mapping(node, at: "retention", allowed: allowed) ?? [] {
            guard let duration = reader.duration(value, at: "retention.\(key)") else { continue }
            switch key {
            case "deliveries": config.retention.deliveries = duration
            case "webhook_events": config.retention.webhookEvents = duration
            case "incidents": config.retention.incidents = duration
            default: break
            }
        }
    }

    /// What retention must outlast: a caller's `Idempotency-Key` is found through its
    /// delivery, and a re-sent `github` or `hmac` event through the stored first one. A
    /// default adapts to the values written (`retention.deliveries` grows to
    /// `deliveries.key_retention`, a `replay_window` shrinks to `retention.webhook_events`);
    /// only written values that conflict are reported.
    func resolveRetention(_ config: inout GatewayConfig, root: Node?, _ reader: inout ConfigReader) {
        let written = root?["retention"]?["deliveries"]
        let keys = config.deliveries.keyRetention
        if config.retention.deliveries < keys {
            if let written {
                reader.report(
                    "retention.deliveries",
                    written,
                    "must be at least deliveries.key_retention (\(ConfigDuration.format(keys))): a caller's "
                        + "Idempotency-Key is remembered through its delivery "
                        + "(got \(ConfigDuration.format(config.retention.deliveries)))"
                )
            } else {
                config.retention.deliveries = keys
            }
        }
        let events = config.retention.webhookEvents
        for index in config.webhooks.indices where config.webhooks[index].replayWindow > events {
            let source = config.webhooks[index]
            guard let written = root?["webhooks"]?[source.name]?["replay_window"] else {
                config.webhooks[index].replayWindow = events
                continue
            }
            reader.report(
                "webhooks.\(source.name).replay_window",
                written,
                "must not exceed retention.webhook_events (\(ConfigDuration.format(events))): a re-sent event "
                    + "is recognised by the stored first one (got \(ConfigDuration.format(source.replayWindow)))"
            )
        }
    }
}
