import BelayHTTP
import HTTPTypes
import Hummingbird

/// Answers requests no route matched with problem+json, as every error Belay produces must
/// be: `405 method-not-allowed` (with `Allow`) when the path is a route's with another
/// method, `404 not-found` otherwise.
///
/// Add it after every route: Hummingbird applies a middleware to the routes added after
/// it, and always to its not-found responder, so added last it sees exactly the requests
/// no route took.
struct UnmatchedRouteMiddleware<Context: RequestContext>: RouterMiddleware {
    /// One route: its path pattern and method.
    struct Route: Sendable {
        var path: [RouterPath.Element]
        var method: HTTPRequest.Method
    }

    let routes: [Route]

    init(routes: [Route]) {
        self.routes = routes
    }

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let requestID = Gateway.newRequestID()
            let allowed = allowedMethods(for: request.uri.path)
            guard allowed.isEmpty else {
                return .problem(
                    ProblemDetails(
                        .methodNotAllowed,
                        detail: "\(request.uri.path) does not take \(request.method.rawValue); it takes "
                            + allowed.joined(separator: ", "),
                        requestID: requestID,
                        instance: request.uri.path
                    ),
                    headers: [.allow: allowed.joined(separator: ", ")]
                )
            }
            return .problem(
                ProblemDetails(
                    .notFound,
                    detail: "there is no route \(request.uri.path)",
                    requestID: requestID,
                    instance: request.uri.path
                )
            )
        }
    }

    /// The methods of the routes whose pattern matches `path`, sorted.
    func allowedMethods(for path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        var methods: Set<String> = []
        for route in routes where Self.matches(route.path, segments) {
            methods.insert(route.method.rawValue)
        }
        return methods.sorted()
    }

    private static func matches(_ pattern: [RouterPath.Element], _ segments: [Substring]) -> Bool {
        for (index, element) in pattern.enumerated() {
            if element.description == "**" { return true }
            guard index < segments.count, element ~= segments[index] else { return false }
        }
        return pattern.count == segments.count
    }
}

extension Router {
    /// Every route added so far, for ``UnmatchedRouteMiddleware``.
    var routeTable: [UnmatchedRouteMiddleware<Context>.Route] {
        routes.map { .init(path: $0.path.components, method: $0.method) }
    }
}
