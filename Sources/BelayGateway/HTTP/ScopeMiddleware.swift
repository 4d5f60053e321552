import Hummingbird
import HummingbirdCore

/// Admits the callers of a group of management routes, so their handlers never authenticate:
/// it gives the request its id, identifies the consumer by its key, charges the consumer's
/// rate limit, and checks it holds one of the group's scopes. Admitted, the handler finds the
/// id and the caller in ``GatewayRequestContext/requestID`` and
/// ``GatewayRequestContext/identity``; refused, the caller gets the problem (401 with
/// `WWW-Authenticate`, 429 with `Retry-After` and `RateLimit`, or 403 naming the scope) under
/// the same request id.
///
/// It runs after routing (routes declare it through ``Router/requiring(_:of:basicRealm:)``),
/// so an unknown path is still 404 and a wrong method 405, whoever asks.
struct ScopeMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let gateway: Gateway
    /// The caller needs one of these.
    let scopes: [String]
    /// For pages a browser opens: the key may come as a Basic password, and a 401 asks for it.
    let basicRealm: String?

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        context.requestID = Gateway.newRequestID()
        switch gateway.authorize(request, anyOf: scopes, basicRealm: basicRealm, requestID: context.requestID) {
        case .failure(let refusal):
            return refusal.response
        case .success(let identity):
            context.identity = identity
            return try await next(request, context)
        }
    }
}

extension Router where Context == GatewayRequestContext {
    /// The routes added to the answer need one of `scopes` of the caller (``ScopeMiddleware``).
    func requiring(_ scopes: String..., of gateway: Gateway, basicRealm: String? = nil) -> RouterGroup<Context> {
        group().add(middleware: ScopeMiddleware(gateway: gateway, scopes: scopes, basicRealm: basicRealm))
    }
}

extension URI {
    /// The query's parameters by name (the last of a repeated name wins), as the services take them.
    var queryDictionary: [String: String] {
        var parameters: [String: String] = [:]
        for (name, value) in queryParameters { parameters[String(name)] = String(value) }
        return parameters
    }
}
