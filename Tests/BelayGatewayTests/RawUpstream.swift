import NIOCore
import NIOPosix

/// An upstream that answers every connection's first bytes with `answer`, as raw bytes, then
/// closes the connection: for answers no well-behaved server sends (a body cut short).
final class RawUpstream: Sendable {
    private let channel: any Channel

    /// The base URL, e.g. `http://127.0.0.1:54321`.
    var baseURL: String { "http://127.0.0.1:\(channel.localAddress?.port ?? 0)" }

    init(answer: String) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(answer: answer))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    func close() async throws {
        try await channel.close()
    }

    private final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let answer: String

        init(answer: String) {
            self.answer = answer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = context.channel.allocator.buffer(string: answer)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(bytes)).whenComplete { _ in
                bound.value.close(promise: nil)
            }
        }
    }
}
