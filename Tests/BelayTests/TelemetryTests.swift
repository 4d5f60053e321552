import Belay
import BelayTestKit
import InMemoryTracing
import Logging
import Metrics
import MetricsTestKit
import Synchronization
import Testing
import Tracing

/// A swift-log handler that keeps every record.
struct CapturingLogHandler: LogHandler {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    final class Store: Sendable {
        let records = Mutex<[Record]>([])
    }

    let store: Store
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        store.records.withLock {
            $0.append(Record(level: event.level, message: event.message.description, metadata: event.metadata ?? [:]))
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct TelemetryTests {
    private func failingOnce() -> @Sendable (ResilienceContext) async throws -> Int {
        let calls = Tally()
        return { _ in
            if calls.increment() == 1 { throw TestError() }
            return 1
        }
    }

    @Test func logsDecisionsWithStructuredMetadata() async throws {
        let store = CapturingLogHandler.Store()
        let logger = Logger(label: "test") { _ in CapturingLogHandler(store: store) }
        let pipeline = try ResiliencePipeline<Int>.Builder()
            .retry(.init(backoff: .constant(.zero)))
            .telemetry(LoggingEventSink(logger: logger))
            .build()
        _ = try await pipeline.execute(correlationID: "req-7", failingOnce())
        let records = store.records.withLock { $0 }
        #expect(records.count == 1)
        let record = try #require(records.first)
        #expect(record.level == .debug)
        #expect(record.metadata["belay.strategy"] == "retry")
        #expect(record.metadata["belay.event"] == "retry_scheduled")
        #expect(record.metadata["belay.correlation.id"] == "req-7")
        #expect(record.metadata["belay.attempt"] == "1")
        #expect(record.message.contains("retry in 0s because TestError"))
    }

    @Test func breakerTransitionsLogAtNotice() async throws {
        let store = CapturingLogHandler.Store()
        let logger = Logger(label: "test") { _ in CapturingLogHandler(store: store) }
        let pipeline = try ResiliencePipeline<Int>.Builder()
            .circuitBreaker(.init(minimumThroughput: 1))
            .telemetry(LoggingEventSink(logger: logger))
            .build()
        _ = await pipeline.executeOutcome { _ in throw TestError() }
        let levels = store.records.withLock { $0.map(\.level) }
        #expect(levels == [.notice])
    }

    @Test func countsDecisionsWithBoundedDimensions() async throws {
        let metrics = TestMetrics()
        let sink = MetricsEventSink(factory: metrics)
        let pipeline = try ResiliencePipeline<Int>.Builder()
            .retry(.init(maxAttempts: 3, backoff: .constant(.zero), name: "payments-retry"))
            .telemetry(sink)
            .build()
        _ = try await pipeline.execute(failingOnce())
        _ = try await pipeline.execute(failingOnce())
        let counter = try metrics.expectCounter(
            "belay_resilience_events_total",
            [("strategy", "payments-retry"), ("event", "retry_scheduled")]
        )
        #expect(counter.totalValue == 2)
        #expect(metrics.counters.count == 1)  // one handle, reused
    }

    @Test func addsSpanEventsToTheActiveSpan() async throws {
        let tracer = InMemoryTracer()
        let pipeline = try ResiliencePipeline<Int>.Builder()
            .retry(.init(backoff: .constant(.zero)))
            .telemetry(TracingEventSinkForTests(tracer: tracer))
            .build()
        let span = tracer.startSpan("proxy")
        try await ServiceContext.$current.withValue(span.context) {
            _ = try await pipeline.execute(failingOnce())
        }
        span.end()
        let finished = try #require(tracer.finishedSpans.first)
        #expect(finished.events.map(\.name) == ["belay.retry_scheduled"])
        #expect(finished.events.first?.attributes["belay.strategy"]?.toSpanAttribute() == "retry")
    }

    @Test func eachTelemetryCallAddsASink() async throws {
        let first = RecordingEventSink()
        let second = RecordingEventSink()
        let pipeline = try ResiliencePipeline<Int>.Builder()
            .retry(.init(backoff: .constant(.zero)))
            .telemetry(first)
            .telemetry(second)
            .build()
        _ = try await pipeline.execute(failingOnce())
        #expect(first.names == ["retry_scheduled"])
        #expect(second.names == ["retry_scheduled"])
    }

    @Test func multiplexSendsToEverySink() async throws {
        let first = RecordingEventSink()
        let second = RecordingEventSink()
        let pipeline = try ResiliencePipeline<Int>.Builder()
            .retry(.init(backoff: .constant(.zero)))
            .telemetry(MultiplexEventSink([first, second]))
            .build()
        _ = try await pipeline.execute(failingOnce())
        #expect(first.names == ["retry_scheduled"])
        #expect(second.names == ["retry_scheduled"])
    }
}

/// `TracingEventSink` resolves the global tracer; bootstrapping the global system in a
/// test process is one-shot, so this double applies the same logic to a given tracer.
struct TracingEventSinkForTests: ResilienceEventSink {
    let tracer: InMemoryTracer

    func receive(_ event: ResilienceEvent) {
        guard let context = ServiceContext.current, let span = tracer.activeSpan(identifiedBy: context) else { return }
        TracingEventSink.annotate(span, with: event)
    }
}
