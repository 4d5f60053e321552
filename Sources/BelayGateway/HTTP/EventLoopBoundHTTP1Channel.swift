import HummingbirdCore
import Logging
import NIOCore
import NIOSSL

/// Hummingbird's HTTP/1.1 channel, with each connection served on its own event loop.
///
/// Hummingbird handles a connection in a task on Swift's cooperative pool while NIO reads and
/// writes it on an event loop, and AsyncHTTPClient works on the event loops too: every await
/// of a request then switches threads. Here the connection's task prefers an executor on the
/// connection's loop (``EventLoopExecutor``), so reading a request, routing it, the proxied
/// call (AsyncHTTPClient prefers a pooled connection on the calling loop) and writing the
/// answer usually stay on one thread. Connections on a loop outside `executors` (none with
/// the default event loop group) are served as Hummingbird does.
///
/// Each connection is guarded (``ConnectionGuard``): slow clients are cut off after the
/// configured timeouts, a connection still busy `inFlightBound` after the server began to
/// stop is closed, and requests framed in ways RFC 9112 refuses are answered
/// `400 invalid-request` before they are routed.
///
/// With `tls`, each connection is TLS first (``ServerTLSContext``: the context current when it
/// is accepted); the guard's deadlines then time the handshake too, from the connection's opening.
struct EventLoopBoundHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let base: HTTP1Channel
    let executors: [ObjectIdentifier: EventLoopExecutor]
    let timeouts: ConnectionDeadlines<ContinuousClock.Instant>.Timeouts
    let inFlightBound: Duration
    let tls: ServerTLSContext?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        if let tls {
            do {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.current))
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
        return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            // After the HTTP decoding, before Hummingbird's own handlers.
            let operations = channel.pipeline.syncOperations
            let state = try operations.handler(type: HTTPConnectionStateHandler.self)
            try operations.addHandler(
                ConnectionGuard(timeouts: timeouts, inFlightBound: inFlightBound, logger: logger),
                position: .before(state)
            )
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        guard let executor = executors[ObjectIdentifier(value.channel.eventLoop)] else {
            await base.handle(value: value, logger: logger)
            return
        }
        await withTaskExecutorPreference(executor) {
            await base.handle(value: value, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with each connection served on its own event loop when it is one of `group`'s,
    /// guarded with the timeouts of `server`, and closed if still open `inFlightBound` after
    /// the server began to stop; TLS first with `tls`.
    static func http1(
        boundToLoopsOf group: any EventLoopGroup,
        server: GatewayConfig.Server,
        inFlightBound: Duration,
        tls: ServerTLSContext? = nil
    ) -> HTTPServerBuilder {
        let executors = EventLoopExecutor.table(for: group)
        let timeouts = ConnectionDeadlines<ContinuousClock.Instant>.Timeouts(server)
        return HTTPServerBuilder { responder in
            EventLoopBoundHTTP1Channel(
                base: HTTP1Channel(responder: responder),
                executors: executors,
                timeouts: timeouts,
                inFlightBound: inFlightBound,
                tls: tls
            )
        }
    }
}
