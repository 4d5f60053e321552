import BelayHTTP
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Router where Context == GatewayRequestContext {
    /// The webhook inbox and its management routes: thin translations to ``WebhookService``.
    func addWebhookRoutes(_ webhooks: WebhookService<ContinuousClock>, gateway: Gateway) {
        // Providers call this; the signature, not a consumer key, is the authentication.
        post("webhooks/:source") { request, context in
            let requestID = Gateway.newRequestID()
            let maxBody = gateway.config.server.maxBody
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maxBody {
                return Response.problem(
                    ProblemDetails(
                        .payloadTooLarge,
                        detail: "the body of \(length) bytes exceeds server.max_body (\(maxBody) bytes)",
                        requestID: requestID
                    )
                )
            }
            var copy = request
            let body: ByteBuffer
            do {
                body = try await copy.collectBody(upTo: maxBody)
            } catch {
                return Response.problem(
                    ProblemDetails(
                        .payloadTooLarge,
                        detail: "the body exceeds server.max_body (\(maxBody) bytes)",
                        requestID: requestID
                    )
                )
            }
            let source = context.parameters.get("source") ?? ""
            let answer = await webhooks.receive(
                source: source,
                body: Data(body.readableBytesView),
                headers: request.headers,
                requestID: requestID
            )
            return Response(answer)
        }
        get("v1/webhooks/events") { request, _ in
            if let refusal = gateway.authorized(request, scope: "webhooks:read") { return refusal }
            var parameters: [String: String] = [:]
            for (name, value) in request.uri.queryParameters { parameters[String(name)] = String(value) }
            return Response(await webhooks.list(parameters, requestID: Gateway.newRequestID()))
        }
        post("v1/webhooks/events/:id/replay") { request, context in
            if let refusal = gateway.authorized(request, scope: "webhooks:write") { return refusal }
            let id = context.parameters.get("id") ?? ""
            return Response(await webhooks.replay(id, requestID: Gateway.newRequestID()))
        }
    }
}
