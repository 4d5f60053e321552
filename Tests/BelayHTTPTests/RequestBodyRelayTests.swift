import Belay
import NIOCore
import Synchronization
import Testing

@testable import BelayHTTP

/// A body source that says when each read begins and counts its reads.
private struct ObservedSource: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let base: AsyncStream<ByteBuffer>
    let reads: Counter
    let readStarted: AsyncStream<Int>.Continuation

    final class Counter: Sendable {
        let value = Atomic(0)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<ByteBuffer>.AsyncIterator
        let reads: Counter
        let readStarted: AsyncStream<Int>.Continuation

        mutating func next() async -> ByteBuffer? {
            let count = reads.value.add(1, ordering: .relaxed).newValue
            readStarted.yield(count)
            return await base.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), reads: reads, readStarted: readStarted)
    }
}

/// Whether a caller's streamed body is still arriving (``RequestBodyProgress``), and the relay
/// that hands it to the HTTP client so that its reading can be stopped (``RequestBodyRelay``).
@Suite struct RequestBodyRelayTests {
    @Test func theProgressStartsWhenTheBodyIsAskedForAndEndsWithItsEnd() async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        continuation.yield(ByteBuffer(string: "ab"))
        continuation.yield(ByteBuffer(string: "c"))
        continuation.finish()
        let body = LimitedBody(stream, limit: 10)
        #expect(!body.progress.hasStarted && !body.progress.isArriving)
        var iterator = body.makeAsyncIterator()
        #expect(try await iterator.next() == ByteBuffer(string: "ab"))
        #expect(body.progress.isArriving && !body.progress.hasEnded)
        #expect(try await iterator.next() == ByteBuffer(string: "c"))
        // Every byte handed over, but the end not seen yet: still arriving.
        #expect(body.progress.isArriving)
        #expect(try await iterator.next() == nil)
        #expect(body.progress.hasEnded && !body.progress.isArriving && body.progress.hasStarted)
    }

    @Test func aBodyThatFailsOrGrowsTooLargeStaysArriving() async throws {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self)
        continuation.finish(throwing: CancellationError())
        let failing = LimitedBody(stream, limit: 10)
        var iterator = failing.makeAsyncIterator()
        await #expect(throws: RequestBodyError.self) { try await iterator.next() }
        #expect(failing.progress.isArriving)

        let (big, bigContinuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        bigContinuation.yield(ByteBuffer(string: "too long"))
        bigContinuation.finish()
        let tooLarge = LimitedBody(big, limit: 3)
        var bigIterator = tooLarge.makeAsyncIterator()
        await #expect(throws: RequestBodyError.self) { try await bigIterator.next() }
        #expect(tooLarge.progress.isArriving)
    }

    @Test func theRelayReadsNothingBeforeItIsAskedThenOneChunkAhead() async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        let (started, startedContinuation) = AsyncStream.makeStream(of: Int.self)
        continuation.yield(ByteBuffer(string: "a"))
        let source = ObservedSource(base: stream, reads: .init(), readStarted: startedContinuation)
        let relay = RequestBodyRelay(source)
        var reads = started.makeAsyncIterator()
        #expect(source.reads.value.load(ordering: .relaxed) == 0)
        #expect(try await relay.handoff.next() == ByteBuffer(string: "a"))
        #expect(await reads.next() == 1)
        // The next chunk is read ahead while the client sends the first: the read waits for the caller.
        #expect(await reads.next() == 2)
        continuation.yield(ByteBuffer(string: "b"))
        continuation.yield(ByteBuffer(string: "c"))
        continuation.finish()
        #expect(try await relay.handoff.next() == ByteBuffer(string: "b"))
        #expect(try await relay.handoff.next() == ByteBuffer(string: "c"))
        #expect(try await relay.handoff.next() == nil)
        #expect(try await relay.handoff.next() == nil)
        await relay.finish()
        // a, b, c and the end: nothing read twice, nothing after the end.
        #expect(source.reads.value.load(ordering: .relaxed) == 4)
    }

    @Test func aRelayNeverAskedReadsNothing() async {
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        continuation.yield(ByteBuffer(string: "a"))
        let (_, startedContinuation) = AsyncStream.makeStream(of: Int.self)
        let source = ObservedSource(base: stream, reads: .init(), readStarted: startedContinuation)
        let relay = RequestBodyRelay(source)
        await relay.finish()
        #expect(source.reads.value.load(ordering: .relaxed) == 0)
        await #expect(throws: RequestBodyError.self) { try await relay.handoff.next() }
    }

    /// The caller sends nothing more: finishing cancels the read waiting for it, the client's
    /// read fails (it never sees an end, which would make a cut body look whole), and nothing
    /// reads the source afterwards.
    @Test func finishingCancelsAReadWaitingForTheCallerAndFailsTheClient() async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        let cancelled = ObservedSource.Counter()
        continuation.onTermination = { termination in
            if case .cancelled = termination { cancelled.value.store(1, ordering: .relaxed) }
        }
        let (started, startedContinuation) = AsyncStream.makeStream(of: Int.self)
        let source = ObservedSource(base: stream, reads: .init(), readStarted: startedContinuation)
        let relay = RequestBodyRelay(source)
        let client = Task { try await relay.handoff.next() }
        var reads = started.makeAsyncIterator()
        #expect(await reads.next() == 1)
        await relay.finish()
        let outcome = await client.result
        #expect(throws: RequestBodyError.self) { try outcome.get() }
        #expect(cancelled.value.load(ordering: .relaxed) == 1)
        await #expect(throws: RequestBodyError.self) { try await relay.handoff.next() }
        continuation.yield(ByteBuffer(string: "late"))
        #expect(source.reads.value.load(ordering: .relaxed) == 1)
    }

    /// The breaker's predicate reads the call's log: the attempt timeout reports the failure as
    /// its own `timeout`, whatever the attempt threw.
    @Test func theBreakerIgnoresATimeoutWhileTheCallersBodyWasArriving() {
        let timeout = ResilienceError(code: .timeout, strategy: "pay-attempt-timeout", message: "did not finish")
        let quiet = AttemptLog()
        #expect(!AttemptLog.$current.withValue(quiet) { UpstreamClient.isCallersFault(.failure(timeout)) })
        let arriving = AttemptLog()
        arriving.noteCallersBodyWasArriving()
        #expect(AttemptLog.$current.withValue(arriving) { UpstreamClient.isCallersFault(.failure(timeout)) })
        #expect(Fault.of(RequestBodyError(code: .incomplete, underlying: timeout)) == .caller)
    }
}
