public import Logging

/// A log handler that redacts each record (its message, metadata and error) with a
/// ``Redactor`` before the handler it wraps writes it. Made by ``Redactor/redacting(_:)``.
public struct RedactingLogHandler: LogHandler {
    /// The handler records go to.
    public private(set) var wrapped: any LogHandler
    /// What is redacted.
    public let redactor: Redactor
    /// The logger's own metadata, redacted with each record (the wrapped handler gets none).
    public var metadata: Logger.Metadata = [:]

    /// Wraps `handler`, taking over its metadata.
    public init(wrapping handler: any LogHandler, redactor: Redactor) {
        var inner = handler
        self.metadata = inner.metadata
        inner.metadata = [:]
        self.wrapped = inner
        self.redactor = redactor
    }

    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
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
        var redacted = event
        redacted.message = "\(redactor.redact(event.message.description))"
        let merged = metadata.isEmpty ? event.metadata : metadata.merging(event.metadata ?? [:]) { $1 }
        redacted.metadata = merged.map { redactor.redact($0) }
        if let error = event.error {
            redacted.error = RedactedError(description: redactor.redact(String(describing: error)))
        }
        wrapped.log(event: redacted)
    }
}

/// An error logged with its description redacted.
struct RedactedError: Error, CustomStringConvertible {
    let description: String
}
