public import Belay
import Synchronization

/// Keeps every resilience event it receives, for assertions in tests.
///
/// ```swift
/// let events = RecordingEventSink()
/// let pipeline = try ResiliencePipeline<Int>.Builder().retry().telemetry(events).build()
/// // …
/// #expect(events.names == ["retry_scheduled"])
/// ```
public final class RecordingEventSink: ResilienceEventSink {
    private let storage = Mutex<[ResilienceEvent]>([])

    /// Creates an empty sink.
    public init() {}

    public func receive(_ event: ResilienceEvent) {
        storage.withLock { $0.append(event) }
    }

    /// Every event so far, in order.
    public var events: [ResilienceEvent] { storage.withLock { $0 } }

    /// The ``ResilienceEvent/Kind/name`` of every event so far.
    public var names: [String] { events.map(\.kind.name) }

    /// Forgets every event.
    public func removeAll() {
        storage.withLock { $0.removeAll() }
    }
}
