public import Logging

/// Logs every resilience decision through swift-log.
///
/// Metadata keys: `belay.strategy`, `belay.event`, `belay.attempt`, `belay.correlation.id`
/// (or the ``correlationKey`` given), plus, where they apply, `belay.delay`, `belay.reason`,
/// `belay.outcome`, `belay.retry_after`, `belay.state.from`, `belay.state.to`, `belay.limit.from`
/// and `belay.limit.to`; and the
/// logger's own metadata. Library code logs nothing at info or above by default: the level
/// is `debug`, except breaker transitions, which use `transitionLevel` (default `notice`).
///
/// ```swift
/// // The gateway: every decision at info, tagged with the request id and the upstream.
/// var logger = logger
/// logger[metadataKey: "belay.upstream"] = "payments"
/// let sink = LoggingEventSink(logger: logger, level: .info, correlationKey: "belay.request.id")
/// ```
public struct LoggingEventSink: ResilienceEventSink {
    /// The logger events go to.
    public let logger: Logger
    /// The level of every event but circuit transitions. Default `.debug`.
    public let level: Logger.Level
    /// The level of circuit transitions. Default `.notice`.
    public let transitionLevel: Logger.Level
    /// The metadata key of the execution's correlation id. Default `belay.correlation.id`.
    public let correlationKey: String

    /// Creates a sink logging to `logger`.
    public init(
        logger: Logger,
        level: Logger.Level = .debug,
        transitionLevel: Logger.Level = .notice,
        correlationKey: String = "belay.correlation.id"
    ) {
        self.logger = logger
        self.level = level
        self.transitionLevel = transitionLevel
        self.correlationKey = correlationKey
    }

    public func receive(_ event: ResilienceEvent) {
        var eventLevel = level
        if case .circuitStateChanged = event.kind { eventLevel = transitionLevel }
        // Build nothing for an event the logger would drop.
        guard logger.logLevel <= eventLevel else { return }
        var metadata: Logger.Metadata = [
            "belay.strategy": .string(event.strategy),
            "belay.event": .string(event.kind.name),
            "belay.attempt": .string(String(event.attempt)),
        ]
        if let correlationID = event.correlationID {
            metadata[correlationKey] = .string(correlationID)
        }
        switch event.kind {
        case .retryScheduled(let delay, let reason):
            metadata["belay.delay"] = .string(delay.formattedForHumans)
            metadata["belay.reason"] = .string(reason)
        case .retryAbandoned(let reason, let outcome):
            metadata["belay.reason"] = .string(reason.rawValue)
            metadata["belay.outcome"] = .string(outcome)
        case .circuitStateChanged(let from, let to):
            metadata["belay.state.from"] = .string(from.rawValue)
            metadata["belay.state.to"] = .string(to.rawValue)
        case .rejected(let code, let retryAfter):
            metadata["belay.reason"] = .string(code.description)
            if let retryAfter { metadata["belay.retry_after"] = .string(retryAfter.formattedForHumans) }
        case .timedOut(let after), .rateLimitDelayed(let after), .hedgeLaunched(_, let after):
            metadata["belay.delay"] = .string(after.formattedForHumans)
        case .fallbackUsed(let reason):
            metadata["belay.reason"] = .string(reason)
        case .faultInjected(let kind):
            metadata["belay.reason"] = .string(kind.rawValue)
        case .concurrencyLimitChanged(let from, let to):
            metadata["belay.limit.from"] = .string(String(from))
            metadata["belay.limit.to"] = .string(String(to))
        }
        logger.log(level: eventLevel, "\(event.description)", metadata: metadata)
    }
}
