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
        let read = requiring("webhooks:read", of: gateway)
        read.get("v1/webhooks/events") { request, context in
            let parameters = request.uri.queryDictionary
            return Response(await webhooks.list(parameters, requestID: context.requestID))
        }
        read.get("v1/webhooks/events/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            return Response(await webhooks.show(id, requestID: context.requestID))
        }
        requiring("webhooks:write", of: gateway).post("v1/webhooks/events/:id/replay") { _, context in
            let id = context.parameters.get("id") ?? ""
            return Response(await webhooks.replay(id, requestID: context.requestID))
        }
    }
}
