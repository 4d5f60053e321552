import Belay
import BelayHTTP
import Logging

/// Logs each resilience decision of an upstream client as ``LoggingEventSink`` does (`info`,
/// breaker transitions `notice`), adding `belay.endpoint`: the endpoint of the call's latest
/// attempt, when the decision belongs to a call.
struct DecisionLogSink: ResilienceEventSink {
    /// The logger, already tagged with the upstream (or webhook source).
    let logger: Logger
    /// The metadata key of the call's correlation id, e.g. `belay.request.id`.
    let correlationKey: String

    func receive(_ event: ResilienceEvent) {
        // Every decision is logged at info or above: nothing to build when notice is off.
        guard logger.logLevel <= .notice else { return }
        var tagged = logger
        if let endpoint = UpstreamClient.currentEndpoint {
            tagged[metadataKey: "belay.endpoint"] = .string(endpoint.description)
        }
        LoggingEventSink(logger: tagged, level: .info, transitionLevel: .notice, correlationKey: correlationKey)
            .receive(event)
    }
}
