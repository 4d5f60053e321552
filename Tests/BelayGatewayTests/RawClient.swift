import Foundation
import NIOCore
import NIOPosix

/// A client that writes raw bytes to a server on 127.0.0.1 and reads what comes back, for
/// requests no well-behaved HTTP client sends (bad framing, a head that never ends).
struct RawClient {
    /// What one connection received.
    struct Received {
        /// Every byte the server sent, as text.
        var text: String
        /// Whether the server closed the connection (false: the bound passed first).
        var closed: Bool

        /// The status code of the first answer, if one came.
        var status: Int? {
            guard text.hasPrefix("HTTP/1.1 ") else { return nil }
            return Int(text.dropFirst(9).prefix(3))
        }

        /// The body of the first answer (everything after its head).
        var body: String {
            guard let end = text.range(of: "\r\n\r\n") else { return "" }
            return String(text[end.upperBound...])
        }

        /// The value of the first answer's header `name` (any case), if present.
        func header(_ name: String) -> String? {
            let head = text.components(separatedBy: "\r\n\r\n").first ?? ""
            for line in head.components(separatedBy: "\r\n").dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == name.lowercased() {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
            return nil
        }
    }

    /// Connects to `port`, writes each of `parts` in turn, then reads until the server closes
    /// the connection or `bound` passes.
    static func exchange(port: Int, _ parts: [String], bound: Duration = .seconds(10)) async throws -> Received {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Received?.self) { group in
                let collected = ReceivedBytes()
                group.addTask {
                    var text = ""
                    do {
                        for try await buffer in inbound {
                            text += String(buffer: buffer)
                            await collected.set(text)
                        }
                    } catch {
                        // A reset connection is closed too.
                    }
                    return Received(text: text, closed: true)
                }
                group.addTask {
                    try await Task.sleep(for: bound)
                    return nil
                }
                for part in parts {
                    // The server may have answered and closed already: what it sent is the result.
                    do { try await outbound.write(ByteBuffer(string: part)) } catch { break }
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                if let first { return first }
                return Received(text: await collected.text, closed: false)
            }
        }
    }
}

/// The bytes a ``RawClient`` has received so far.
private actor ReceivedBytes {
    var text = ""

    func set(_ value: String) { text = value }
}
