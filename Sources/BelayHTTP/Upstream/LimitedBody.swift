public import NIOCore
import Synchronization

/// A request body streamed through as it arrives that throws ``RequestBodyError`` once more
/// than `limit` bytes have arrived, or when reading it fails.
///
/// Wrap the caller's body in it before sending it upstream, and set the request's
/// ``UpstreamRequest/bodyProgress`` to its ``progress``, so ``UpstreamClient`` can tell the
/// caller's failure from the upstream's (relayed through a ``RequestBodyRelay``, so that the
/// read can be stopped when the call ends):
///
/// ```swift
/// let limited = LimitedBody(request.body, limit: maxBody)
/// let relay = RequestBodyRelay(limited)
/// var upstream = UpstreamRequest(method: .post, path: "/v1/upload", body: .stream(relay.body(length: .unknown)))
/// upstream.bodyProgress = limited.progress
/// ```
public struct LimitedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    public typealias Element = ByteBuffer

    /// The body being read.
    public let base: Base
    /// The most bytes allowed.
    public let limit: Int
    /// How far the body has got: asked for, and all handed over.
    public let progress: RequestBodyProgress

    /// Limits `base` to `limit` bytes.
    public init(_ base: Base, limit: Int) {
        self.base = base
        self.limit = limit
        self.progress = RequestBodyProgress()
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var remaining: Int
        let limit: Int
        let progress: RequestBodyProgress

        public mutating func next() async throws -> ByteBuffer? {
            progress.markStarted()
            let chunk: ByteBuffer?
            do {
                chunk = try await base.next()
            } catch {
                throw RequestBodyError(code: .readFailed, underlying: error)
            }
            guard let chunk else {
                progress.markEnded()
                return nil
            }
            remaining -= chunk.readableBytes
            if remaining < 0 { throw RequestBodyError(code: .tooLarge, limit: limit) }
            return chunk
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), remaining: limit, limit: limit, progress: progress)
    }
}

/// How far a caller's streamed request body has got: whether the HTTP client has asked for
/// it (the request's head went out) and whether it has ended (every byte handed to the client).
///
/// ``LimitedBody`` keeps one up to date; ``UpstreamClient`` reads it when an attempt fails
/// (``UpstreamRequest/bodyProgress``). An attempt that fails while the body is still arriving
/// (``isArriving``), whether its deadline passed or the connection broke, failed because of
/// the caller's pace, not the upstream's: ``Fault/caller``.
public final class RequestBodyProgress: Sendable {
    /// 0: not asked for yet; 1: arriving; 2: ended.
    private let stage = Atomic<UInt8>(0)

    /// Creates the progress of a body not asked for yet.
    public init() {}

    /// Whether the client has asked for the body (its first bytes, at least).
    public var hasStarted: Bool { stage.load(ordering: .acquiring) >= 1 }

    /// Whether the body has ended: every byte of it was handed to the client.
    public var hasEnded: Bool { stage.load(ordering: .acquiring) == 2 }

    /// Whether the caller is still sending: asked for, not ended.
    public var isArriving: Bool { stage.load(ordering: .acquiring) == 1 }

    /// The client asked for the next bytes (the first time: the body has started).
    func markStarted() {
        _ = stage.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing)
    }

    /// The body ended: its last bytes were handed over.
    func markEnded() {
        stage.store(2, ordering: .releasing)
    }
}
