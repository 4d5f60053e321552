public import AsyncHTTPClient
public import NIOCore
import Synchronization

/// Hands a caller's request body to the HTTP client in a way its owner can stop, so that
/// nothing is left reading the body once the call is over.
///
/// AsyncHTTPClient reads a streamed request body in a task of its own, which nothing stops
/// when the request fails: that task goes on waiting for the caller's next bytes. A server
/// that reads the rest of a request body itself once it has answered (Hummingbird drains it
/// before reading the next request) would then read the body at the same time, which its
/// stream forbids (the process traps). The relay reads the body in a task it owns, at most
/// one chunk ahead of the client (so the caller is read no faster than the upstream takes its
/// bytes, and not at all before the client asks for the body); ``finish()`` stops that task,
/// cancelling a read still waiting for the caller, and waits for it to end.
///
/// ```swift
/// let relay = RequestBodyRelay(LimitedBody(request.body, limit: maxBody))
/// let result = await client.send(
///     UpstreamRequest(method: .post, path: "/v1/upload", body: .stream(relay.body(length: .unknown))),
///     correlationID: id
/// )
/// await relay.finish()  // before the server reads the rest of the body
/// ```
///
/// Call ``finish()`` once the call is over (for an answer relayed as it arrives: once it has
/// been relayed). A relay released without it stops its task without waiting for it.
public final class RequestBodyRelay: Sendable {
    let handoff: BodyHandoff
    private let pump: Task<Void, Never>

    /// Relays `source`; nothing is read until the client asks for the body.
    ///
    /// The source must end a read when its task is cancelled (a server's request body does).
    public init<Source: AsyncSequence & Sendable>(_ source: Source) where Source.Element == ByteBuffer {
        let handoff = BodyHandoff()
        self.handoff = handoff
        self.pump = Task { await handoff.pump(source) }
    }

    deinit {
        handoff.stop()
        pump.cancel()
    }

    /// The body to give the HTTP client (once: the relay serves one reader).
    public func body(length: HTTPClientRequest.Body.Length) -> HTTPClientRequest.Body {
        .stream(BodyHandoff.Chunks(handoff: handoff), length: length)
    }

    /// Stops relaying and waits until nothing reads the source any more: a read waiting for
    /// the caller is cancelled, and the client's next read (or the one it is waiting on)
    /// fails with ``RequestBodyError``. Does nothing more once the body has ended.
    public func finish() async {
        handoff.stop()
        pump.cancel()
        await pump.value
    }
}

/// The meeting point of the relay's task, which reads the source, and the HTTP client's,
/// which asks for chunks. Once the client has asked for the first chunk, the relay's task
/// keeps one chunk read ahead (so the client rarely waits on it), never more: the source is
/// read no faster than the client takes it, and not at all before the client asks. The end
/// is read only once every chunk before it was taken.
final class BodyHandoff: Sendable {
    private struct State {
        /// The relay's task, waiting until it may read.
        var idle: CheckedContinuation<Bool, Never>?
        /// The client, waiting for a chunk.
        var waiting: CheckedContinuation<ByteBuffer?, any Error>?
        /// What was read ahead and not taken yet: a chunk, the end (nil) or the source's error.
        var ready: Result<ByteBuffer?, any Error>?
        /// Whether the client has asked for the body.
        var started = false
        /// How it ended, once the client took the end or the relay stopped: what every later
        /// read answers (nil, or the error).
        var end: Result<ByteBuffer?, any Error>?

        /// Whether the relay's task may read the next chunk now.
        var mayRead: Bool { started && ready == nil && end == nil }
    }

    private let state = Mutex(State())

    /// The HTTP client's view: each `next()` takes the chunk read ahead, or waits for it.
    struct Chunks: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let handoff: BodyHandoff

        struct AsyncIterator: AsyncIteratorProtocol {
            let handoff: BodyHandoff

            mutating func next() async throws -> ByteBuffer? {
                try await handoff.next()
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handoff: handoff) }
    }

    /// Whether `read` ends the body: its end, or the source's error.
    private static func isLast(_ read: Result<ByteBuffer?, any Error>) -> Bool {
        if case .success(.some) = read { return false }
        return true
    }

    /// The next chunk: nil when the body has ended.
    func next() async throws -> ByteBuffer? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ByteBuffer?, any Error>) in
            var answer: Result<ByteBuffer?, any Error>?
            let idle = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                if let end = state.end {
                    answer = end
                    return nil
                }
                // One reader at a time: AsyncHTTPClient asks again only once answered.
                if state.waiting != nil {
                    answer = .failure(RequestBodyError(code: .readFailed))
                    return nil
                }
                state.started = true
                if let ready = state.ready {
                    state.ready = nil
                    if Self.isLast(ready) { state.end = ready }
                    answer = ready
                } else {
                    state.waiting = continuation
                }
                // The slot is free (or the first chunk is wanted): the relay's task may read.
                return state.mayRead ? state.idle.take() : nil
            }
            idle?.resume(returning: true)
            if let answer { continuation.resume(with: answer) }
        }
    }

    /// The relay's task: reads `source` while the client wants chunks, one ahead at most,
    /// until it ends, fails or the relay stops.
    func pump<Source: AsyncSequence & Sendable>(_ source: Source) async where Source.Element == ByteBuffer {
        var iterator = source.makeAsyncIterator()
        while await mayRead() {
            let read: Result<ByteBuffer?, any Error>
            do {
                read = .success(try await iterator.next())
            } catch {
                read = .failure(error)
            }
            let waiting = state.withLock { state -> CheckedContinuation<ByteBuffer?, any Error>? in
                // Stopped while reading: the client was answered already.
                guard state.end == nil else { return nil }
                guard let waiting = state.waiting.take() else {
                    state.ready = read
                    return nil
                }
                if Self.isLast(read) { state.end = read }
                return waiting
            }
            waiting?.resume(with: read)
            if Self.isLast(read) { return }
        }
    }

    /// Waits until the relay's task may read: true; false once the relay has stopped.
    private func mayRead() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let ready = state.withLock { state -> Bool? in
                    if state.end != nil { return false }
                    if state.mayRead { return true }
                    state.idle = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            stop()
        }
    }

    /// Ends the relay: the client's read fails, the relay's task stops waiting to read.
    func stop() {
        let stopped = RequestBodyError(code: .readFailed, underlying: CancellationError())
        let (idle, waiting) = state.withLock { state in
            if state.end == nil { state.end = .failure(stopped) }
            state.ready = nil
            return (state.idle.take(), state.waiting.take())
        }
        idle?.resume(returning: false)
        waiting?.resume(throwing: stopped)
    }
}
