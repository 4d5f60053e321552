import BelayHTTP
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Router where Context == GatewayRequestContext {
    /// The delivery queue's routes: thin translations to ``DeliveryService``.
    func addDeliveryRoutes(_ deliveries: DeliveryService<ContinuousClock>, gateway: Gateway) {
        post("v1/deliveries") { request, _ in
            await gateway.asDeliveryCaller(request, anyOf: ["deliveries:write"]) { caller in
                await gateway.acceptDelivery(request, caller: caller, deliveries)
            }
        }
        get("v1/deliveries") { request, _ in
            await gateway.asDeliveryCaller(request, anyOf: ["deliveries:read"]) { caller in
                var parameters: [String: String] = [:]
                for (name, value) in request.uri.queryParameters { parameters[String(name)] = String(value) }
                return Response(await deliveries.list(parameters, requestID: Gateway.newRequestID(), caller: caller))
            }
        }
        get("v1/deliveries/:id") { request, context in
            await gateway.asDeliveryCaller(request, anyOf: ["deliveries:read"]) { caller in
                let id = context.parameters.get("id") ?? ""
                return Response(await deliveries.show(id, requestID: Gateway.newRequestID(), caller: caller))
            }
        }
        post("v1/deliveries/:id/retry") { request, context in
            await gateway.asDeliveryCaller(request, anyOf: ["deliveries:write"]) { caller in
                let id = context.parameters.get("id") ?? ""
                return Response(await deliveries.retry(id, requestID: Gateway.newRequestID(), caller: caller))
            }
        }
        post("v1/deliveries/:id/cancel") { request, context in
            await gateway.asDeliveryCaller(request, anyOf: ["deliveries:write"]) { caller in
                let id = context.parameters.get("id") ?? ""
                return Response(await deliveries.cancel(id, requestID: Gateway.newRequestID(), caller: caller))
            }
        }
        post("v1/deliveries/:id/ack") { request, context in
            // The narrower deliveries:ack scope is enough; the delivery must still be the caller's.
            await gateway.asDeliveryCaller(request, anyOf: ["deliveries:ack", "deliveries:write"]) { caller in
                let id = context.parameters.get("id") ?? ""
                return Response(await deliveries.acknowledge(id, requestID: Gateway.newRequestID(), caller: caller))
            }
        }
    }
}

extension Gateway {
    /// `POST /v1/deliveries`: the body within `server.max_body`, then the service.
    func acceptDelivery(
        _ request: Request,
        caller: DeliveryCaller,
        _ deliveries: DeliveryService<ContinuousClock>
    ) async -> Response {
        let requestID = Gateway.newRequestID()
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
            caller: caller
        )
        return Response(answer)
    }

    /// Runs `body` for the delivery API's caller if it holds one of `scopes` and is within its
    /// rate limit; otherwise answers the refusal.
    func asDeliveryCaller(
        _ request: Request,
        anyOf scopes: [String],
        _ body: (DeliveryCaller) async -> Response
    ) async -> Response {
        switch deliveryCaller(request, anyOf: scopes) {
        case .success(let caller): await body(caller)
        case .failure(let refusal): refusal.response
        }
    }

    /// The delivery API's caller, if it holds one of `scopes` and is within its rate limit.
    func deliveryCaller(_ request: Request, anyOf scopes: [String]) -> Result<DeliveryCaller, Refusal> {
        authorize(request, anyOf: scopes).map { identity in
            DeliveryCaller(
                consumer: auth.isOpenMode ? "" : identity.name,
                isAdmin: identity.allows("admin"),
                mayUse: { identity.allows("proxy:\($0)") }
            )
        }
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
