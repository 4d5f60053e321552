import Belay
import BelayHTTP
import Logging

/// Logs each resilience decision of an upstream client as ``LoggingEventSink`` does (retries
/// `info`, breaker transitions `notice`), adding `belay.endpoint`: the endpoint of the call's
/// latest attempt, when the decision belongs to a call.
///
/// Timeouts and rejections (circuit open, bulkhead full, rate limited) are logged at `debug`:
/// a caller can cause one per request (a short `Belay-Timeout`, a flood), and a caller must not
/// be able to write a log line per request at `info`. Metrics, traces and the audit trail
/// count them; the breaker's transitions say when an upstream starts and stops failing.
struct DecisionLogSink: ResilienceEventSink {
    /// The logger, already tagged with the upstream (or webhook source).
    let logger: Logger
    /// The metadata key of the call's correlation id, e.g. `belay.request.id`.
    let correlationKey: String

    func receive(_ event: ResilienceEvent) {
        let level: Logger.Level
        let highest: Logger.Level
        switch event.kind {
        case .timedOut, .rejected: (level, highest) = (.debug, .debug)
        case .circuitStateChanged: (level, highest) = (.info, .notice)
        default: (level, highest) = (.info, .info)
        }
        // Nothing to build for a record the logger would drop.
        guard logger.logLevel <= highest else { return }
        var tagged = logger
        if let endpoint = UpstreamClient.currentEndpoint {
            tagged[metadataKey: "belay.endpoint"] = .string(endpoint.description)
        }
        LoggingEventSink(logger: tagged, level: level, transitionLevel: .notice, correlationKey: correlationKey)
            .receive(event)
    }
}
