import BelayHTTP
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Router where Context == GatewayRequestContext {
    /// The delivery queue's routes: thin translations to ``DeliveryService``.
    func addDeliveryRoutes(_ deliveries: DeliveryService<ContinuousClock>, gateway: Gateway) {
        let write = requiring("deliveries:write", of: gateway)
        let read = requiring("deliveries:read", of: gateway)
        write.post("v1/deliveries") { request, context in
            await gateway.acceptDelivery(request, context: context, deliveries)
        }
        read.get("v1/deliveries") { request, context in
            let parameters = request.uri.queryDictionary
            let caller = gateway.deliveryCaller(context.identity)
            return Response(await deliveries.list(parameters, requestID: context.requestID, caller: caller))
        }
        read.get("v1/deliveries/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            let caller = gateway.deliveryCaller(context.identity)
            return Response(await deliveries.show(id, requestID: context.requestID, caller: caller))
        }
        write.post("v1/deliveries/:id/retry") { _, context in
            let id = context.parameters.get("id") ?? ""
            let caller = gateway.deliveryCaller(context.identity)
            return Response(await deliveries.retry(id, requestID: context.requestID, caller: caller))
        }
        write.post("v1/deliveries/:id/cancel") { _, context in
            let id = context.parameters.get("id") ?? ""
            let caller = gateway.deliveryCaller(context.identity)
            return Response(await deliveries.cancel(id, requestID: context.requestID, caller: caller))
        }
        // The narrower deliveries:ack scope is enough; the delivery must still be the caller's.
        requiring("deliveries:ack", "deliveries:write", of: gateway).post("v1/deliveries/:id/ack") { _, context in
            let id = context.parameters.get("id") ?? ""
            let caller = gateway.deliveryCaller(context.identity)
            return Response(await deliveries.acknowledge(id, requestID: context.requestID, caller: caller))
        }
    }
}

extension Gateway {
    /// `POST /v1/deliveries`: the body within `server.max_body`, then the service.
    func acceptDelivery(
        _ request: Request,
        context: GatewayRequestContext,
        _ deliveries: DeliveryService<ContinuousClock>
    ) async -> Response {
        let requestID = context.requestID
        let maxBody = config.server.maxBody
        var copy = request
        let body: ByteBuffer
        do {
            body = try await copy.collectBody(upTo: maxBody)
        } catch {
            return .problem(
                ProblemDetails(
                    .payloadTooLarge,
                    detail: "the body exceeds server.max_body (\(maxBody) bytes)",
                    requestID: requestID,
                    field: "/body"
                )
            )
        }
        let answer = await deliveries.accept(
            Data(body.readableBytesView),
            headers: request.headers,
            requestID: requestID,
            caller: deliveryCaller(context.identity)
        )
        return Response(answer)
    }

    /// The delivery API's caller, as ``ScopeMiddleware`` admitted it.
    func deliveryCaller(_ identity: ConsumerAuth.Identity) -> DeliveryCaller {
        DeliveryCaller(
            consumer: auth.isOpenMode ? "" : identity.name,
            isAdmin: identity.allows("admin"),
            mayUse: { identity.allows("proxy:\($0)") }
        )
    }
}

extension Response {
    /// Sends a management API answer, with `Belay-Request-Id` for problems.
    init(_ answer: APIAnswer) {
        var headers = answer.headers
        headers[.cacheControl] = "no-store"
        self.init(
            status: HTTPResponse.Status(code: answer.status),
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: answer.body))
        )
    }
}
