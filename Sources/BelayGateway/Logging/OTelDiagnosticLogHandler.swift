public import Logging

/// The log handler swift-otel's own diagnostics go through (``TraceExport``): keeps what a
/// caller sends out of them.
///
/// swift-otel logs a warning with the whole header carrier (every request header, in clear:
/// `Authorization`, `Cookie`, …) each time a request's `traceparent` cannot be read, so any
/// caller could write one line per request, and its secrets, into the logs. Here any record
/// that carries a `carrier` is written instead as one fixed `debug` line with no metadata
/// and no error (the error describes the caller's value). Every other record goes to the
/// wrapped handler, at both this handler's level (the one swift-otel sets) and the wrapped
/// handler's own.
public struct OTelDiagnosticLogHandler: LogHandler {
    /// What replaces a record that carried request headers.
    public static let unreadableContextMessage: Logger.Message =
        "a request's trace context could not be read; it starts a new trace"

    /// The handler records go to (its level is left as it was set).
    public private(set) var wrapped: any LogHandler
    /// The level swift-otel sets for its diagnostics.
    public var logLevel: Logger.Level
    /// The logger's own metadata, added to each record.
    public var metadata: Logger.Metadata = [:]

    /// Wraps `handler`, at its level until swift-otel sets one.
    public init(wrapping handler: any LogHandler) {
        self.wrapped = handler
        self.logLevel = handler.logLevel
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var record = event
        if event.metadata?["carrier"] != nil || metadata["carrier"] != nil {
            record.level = .debug
            record.message = Self.unreadableContextMessage
            record.metadata = [:]
            record.error = nil
        } else if !metadata.isEmpty {
            record.metadata = metadata.merging(event.metadata ?? [:]) { $1 }
        }
        guard record.level >= wrapped.logLevel else { return }
        wrapped.log(event: record)
    }

    /// `logger` with its records going through this handler.
    public static func wrapping(_ logger: Logger) -> Logger {
        let handler = logger.handler
        return Logger(label: logger.label) { _ in OTelDiagnosticLogHandler(wrapping: handler) }
    }
}
