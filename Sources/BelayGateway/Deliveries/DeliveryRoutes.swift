import BelayHTTP
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Router where Context == GatewayRequestContext {
    /// The delivery queue's routes: thin translations to ``DeliveryService``.
    func addDeliveryRoutes(_ deliveries: DeliveryService<ContinuousClock>, gateway: Gateway) {
        post("v1/deliveries") { request, _ in
            let caller: DeliveryCaller
            switch gateway.deliveryCaller(request, anyOf: ["deliveries:write"]) {
            case .success(let found): caller = found
            case .failure(let refusal): return refusal.response
            }
            let requestID = Gateway.newRequestID()
            let maxBody = gateway.config.server.maxBody
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
        get("v1/deliveries") { request, _ in
            let caller: DeliveryCaller
            switch gateway.deliveryCaller(request, anyOf: ["deliveries:read"]) {
            case .success(let found): caller = found
            case .failure(let refusal): return refusal.response
            }
            var parameters: [String: String] = [:]
            for (name, value) in request.uri.queryParameters { parameters[String(name)] = String(value) }
            return Response(await deliveries.list(parameters, requestID: Gateway.newRequestID(), caller: caller))
        }
        get("v1/deliveries/:id") { request, context in
            let caller: DeliveryCaller
            switch gateway.deliveryCaller(request, anyOf: ["deliveries:read"]) {
            case .success(let found): caller = found
            case .failure(let refusal): return refusal.response
            }
            let id = context.parameters.get("id") ?? ""
            return Response(await deliveries.show(id, requestID: Gateway.newRequestID(), caller: caller))
        }
        post("v1/deliveries/:id/retry") { request, context in
            let caller: DeliveryCaller
            switch gateway.deliveryCaller(request, anyOf: ["deliveries:write"]) {
            case .success(let found): caller = found
            case .failure(let refusal): return refusal.response
            }
            let id = context.parameters.get("id") ?? ""
            return Response(await deliveries.retry(id, requestID: Gateway.newRequestID(), caller: caller))
        }
        post("v1/deliveries/:id/cancel") { request, context in
            let caller: DeliveryCaller
            switch gateway.deliveryCaller(request, anyOf: ["deliveries:write"]) {
            case .success(let found): caller = found
            case .failure(let refusal): return refusal.response
            }
            let id = context.parameters.get("id") ?? ""
            return Response(await deliveries.cancel(id, requestID: Gateway.newRequestID(), caller: caller))
        }
        post("v1/deliveries/:id/ack") { request, context in
            // The narrower deliveries:ack scope is enough; the delivery must still be the caller's.
            let caller: DeliveryCaller
            switch gateway.deliveryCaller(request, anyOf: ["deliveries:ack", "deliveries:write"]) {
            case .success(let found): caller = found
            case .failure(let refusal): return refusal.response
            }
            let id = context.parameters.get("id") ?? ""
            return Response(await deliveries.acknowledge(id, requestID: Gateway.newRequestID(), caller: caller))
        }
    }
}

extension Gateway {
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
