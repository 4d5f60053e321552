import BelayHTTP
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension Router where Context == GatewayRequestContext {
    /// The health routes, thin translations to ``StatusService``: `GET /v1/upstreams`,
    /// `/v1/upstreams/{name}` (scope `upstreams:read`), and `GET /v1/status` and the status page
    /// `GET /` (scope `status:read`; open in open mode, like every route).
    /// The realm a browser is asked for the key in (as a Basic password).
    static var realm: String { "belay status" }

    func addStatusRoutes(_ status: StatusService) {
        let gateway = status.gateway
        get("v1/upstreams") { request, _ in
            gateway.authorized(request, scope: "upstreams:read") ?? Response(status.upstreamsAnswer())
        }
        get("v1/upstreams/:name") { request, context in
            if let refusal = gateway.authorized(request, scope: "upstreams:read") { return refusal }
            let name = context.parameters.get("name") ?? ""
            return Response(status.upstreamAnswer(name, requestID: Gateway.newRequestID()))
        }
        get("v1/status") { request, _ in
            if let refusal = gateway.authorized(request, scope: "status:read", basicRealm: Self.realm) {
                return refusal
            }
            return Response(await status.statusAnswer())
        }
        get("/") { request, _ in
            if let refusal = gateway.authorized(request, scope: "status:read", basicRealm: Self.realm) {
                return refusal
            }
            return Response(
                status: .ok,
                headers: [
                    .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                    // Everything is inline; nothing may be loaded from elsewhere.
                    .contentSecurityPolicy:
                        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                        + "connect-src 'self'; img-src 'self'",
                ],
                body: .init(byteBuffer: ByteBuffer(string: await status.page()))
            )
        }
    }
}
