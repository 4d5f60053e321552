import Synchronization

/// A value a config reload replaces whole. Each reader gets the one in force when it reads,
/// and keeps it for the work it began with.
///
/// ```swift
/// let sources = Reloadable(WebhookSources(config.webhooks))
/// let current = sources.value          // one read per request
/// sources.replace(with: WebhookSources(reloaded.webhooks))
/// ```
final class Reloadable<Value: Sendable>: Sendable {
    private let current: Mutex<Value>

    /// Holds `value` until the first reload.
    init(_ value: Value) {
        current = Mutex(value)
    }

    /// The value in force.
    var value: Value { current.withLock { $0 } }

    /// Makes `value` the one in force for every later read.
    func replace(with value: Value) {
        current.withLock { $0 = value }
    }
}
