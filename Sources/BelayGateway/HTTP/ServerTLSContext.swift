import NIOSSL
import Synchronization

/// The TLS context the listener serves new connections with (`server.tls`), replaceable.
///
/// Each accepted connection reads ``current`` once, when its pipeline is set up, so a
/// ``replace(with:)`` (a renewed certificate, on reload) takes effect for the next connection
/// while the open ones keep the context they were accepted with.
final class ServerTLSContext: Sendable {
    private let context: Mutex<NIOSSLContext>

    /// A context for `tls`; throws if its key does not match its certificate.
    init(_ tls: GatewayConfig.ServerTLS) throws {
        self.context = Mutex(try tls.makeContext())
    }

    /// The context a connection accepted now is served with.
    var current: NIOSSLContext { context.withLock { $0 } }

    /// Serves connections accepted from now on with `tls`; on a throw, the current context stays.
    func replace(with tls: GatewayConfig.ServerTLS) throws {
        let replacement = try tls.makeContext()
        context.withLock { $0 = replacement }
    }
}
