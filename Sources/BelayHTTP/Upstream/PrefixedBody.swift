import AsyncHTTPClient
import NIOCore
import Synchronization

/// An answer's body whose first bytes were already read (to see whether it fits in memory):
/// those bytes, then the rest as it arrives.
struct PrefixedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    /// Holds the upstream body's iterator until the one consumer takes it.
    final class Remainder: Sendable {
        private let iterator: Mutex<HTTPClientResponse.Body.AsyncIterator?>

        init(_ iterator: consuming sending HTTPClientResponse.Body.AsyncIterator) {
            self.iterator = Mutex(iterator)
        }

        /// The iterator, the first time; nil after that (a body is read once).
        func take() -> HTTPClientResponse.Body.AsyncIterator? {
            iterator.withLock { $0.take() }
        }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var prefix: ByteBuffer?
        var rest: HTTPClientResponse.Body.AsyncIterator?

        mutating func next() async throws -> ByteBuffer? {
            if let prefix {
                self.prefix = nil
                return prefix
            }
            return try await rest?.next()
        }
    }

    let prefix: ByteBuffer
    let remainder: Remainder

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(prefix: prefix, rest: remainder.take())
    }
}

extension UpstreamResponse.Body {
    /// Reads `body` into memory if it fits in `limit` bytes; otherwise streams it (what was
    /// already read first). A declared `Content-Length` decides without reading.
    static func holding(
        _ body: HTTPClientResponse.Body,
        declaredLength: Int?,
        upTo limit: Int
    ) async throws -> UpstreamResponse.Body {
        if let declaredLength {
            guard declaredLength <= limit else { return .stream(body) }
            return .buffered(try await body.collect(upTo: limit))
        }
        var iterator = body.makeAsyncIterator()
        var held = ByteBuffer()
        while let chunk = try await iterator.next() {
            held.writeImmutableBuffer(chunk)
            if held.readableBytes > limit {
                let remainder = PrefixedBody.Remainder(iterator)
                return .stream(.stream(PrefixedBody(prefix: held, remainder: remainder)))
            }
        }
        return .buffered(held)
    }
}
