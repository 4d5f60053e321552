public import Hummingbird
public import NIOCore

/// The request context of the gateway: the caller's address, for `X-Forwarded-For`, and the
/// connection's event loop.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The caller's address, if the channel knows it.
    public let remoteAddress: SocketAddress?
    /// The connection's event loop.
    let eventLoop: any EventLoop
    /// The largest body routes collect (the proxy streams and enforces `server.max_body` itself).
    public var maxUploadSize: Int { 1 << 20 }

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.eventLoop = source.channel.eventLoop
    }
}
