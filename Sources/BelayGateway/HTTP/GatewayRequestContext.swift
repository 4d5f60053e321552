public import Hummingbird
public import NIOCore

/// The request context of the gateway: the caller's address, for `X-Forwarded-For`, the
/// connection's event loop, and for management routes the request id and the admitted caller.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The caller's address, if the channel knows it.
    public let remoteAddress: SocketAddress?
    /// The connection's event loop.
    let eventLoop: any EventLoop
    /// The request's id (`Belay-Request-Id`), set for management routes by ``ScopeMiddleware``;
    /// empty before it ran.
    public internal(set) var requestID = ""
    /// The caller, as ``ScopeMiddleware`` identified and admitted it; ``ConsumerAuth/Identity/nobody``
    /// (no scope at all) on routes that do not require one.
    public internal(set) var identity = ConsumerAuth.Identity.nobody
    /// The largest body routes collect (the proxy streams and enforces `server.max_body` itself).
    public var maxUploadSize: Int { 1 << 20 }

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.eventLoop = source.channel.eventLoop
    }
}
