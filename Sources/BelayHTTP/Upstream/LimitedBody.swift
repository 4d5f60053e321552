public import NIOCore

/// A request body streamed through as it arrives that throws ``RequestBodyError`` once more
/// than `limit` bytes have arrived, or when reading it fails.
///
/// Wrap the caller's body in it before sending it upstream, so ``UpstreamClient`` can tell
/// the caller's failure from the upstream's:
///
/// ```swift
/// let body = UpstreamRequest.Body.stream(.stream(LimitedBody(request.body, limit: maxBody), length: .unknown))
/// ```
public struct LimitedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    public typealias Element = ByteBuffer

    /// The body being read.
    public let base: Base
    /// The most bytes allowed.
    public let limit: Int

    /// Limits `base` to `limit` bytes.
    public init(_ base: Base, limit: Int) {
        self.base = base
        self.limit = limit
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var remaining: Int
        let limit: Int

        public mutating func next() async throws -> ByteBuffer? {
            let chunk: ByteBuffer?
            do {
                chunk = try await base.next()
            } catch {
                throw RequestBodyError(code: .readFailed, underlying: error)
            }
            guard let chunk else { return nil }
            remaining -= chunk.readableBytes
            if remaining < 0 { throw RequestBodyError(code: .tooLarge, limit: limit) }
            return chunk
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), remaining: limit, limit: limit)
    }
}
