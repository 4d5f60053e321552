import BelayHTTP
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Router where Context == GatewayRequestContext {
    /// The delivery queue's routes: thin translations to ``DeliveryService``.
    func addDeliveryRoutes(_ deliveries: DeliveryService<ContinuousClock>, gateway: Gateway) {
        post("v1/deliveries") { request, _ in
            if let refusal = gateway.authorized(request, scope: "deliveries:write") { return refusal }
            let requestID = Gateway.requestID(from: request.headers)
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
            let identity = try? gateway.auth.identify(request.headers).get()
            let answer = await deliveries.accept(
                Data(body.readableBytesView),
                headers: request.headers,
                requestID: requestID,
                mayUse: { identity?.allows("proxy:\($0)") ?? false }
            )
            return Response(answer)
        }
        get("v1/deliveries") { request, _ in
            if let refusal = gateway.authorized(request, scope: "deliveries:read") { return refusal }
            var parameters: [String: String] = [:]
            for (name, value) in request.uri.queryParameters { parameters[String(name)] = String(value) }
            return Response(await deliveries.list(parameters, requestID: Gateway.requestID(from: request.headers)))
        }
        get("v1/deliveries/:id") { request, context in
            if let refusal = gateway.authorized(request, scope: "deliveries:read") { return refusal }
            let id = context.parameters.get("id") ?? ""
            return Response(await deliveries.show(id, requestID: Gateway.requestID(from: request.headers)))
        }
        post("v1/deliveries/:id/retry") { request, context in
            if let refusal = gateway.authorized(request, scope: "deliveries:write") { return refusal }
            let id = context.parameters.get("id") ?? ""
            return Response(await deliveries.retry(id, requestID: Gateway.requestID(from: request.headers)))
        }
        post("v1/deliveries/:id/cancel") { request, context in
            if let refusal = gateway.authorized(request, scope: "deliveries:write") { return refusal }
            let id = context.parameters.get("id") ?? ""
            return Response(await deliveries.cancel(id, requestID: Gateway.requestID(from: request.headers)))
        }
        post("v1/deliveries/:id/ack") { request, context in
            // The receiving system may hold only the narrower deliveries:ack scope.
            if gateway.authorized(request, scope: "deliveries:ack") != nil,
                let refusal = gateway.authorized(request, scope: "deliveries:write")
            {
                return refusal
            }
            let id = context.parameters.get("id") ?? ""
            return Response(await deliveries.acknowledge(id, requestID: Gateway.requestID(from: request.headers)))
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
