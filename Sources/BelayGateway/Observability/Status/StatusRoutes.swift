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
        let upstreams = requiring("upstreams:read", of: gateway)
        upstreams.get("v1/upstreams") { _, _ in
            Response(status.upstreamsAnswer())
        }
        upstreams.get("v1/upstreams/:name") { _, context in
            let name = context.parameters.get("name") ?? ""
            return Response(status.upstreamAnswer(name, requestID: context.requestID))
        }
        let page = requiring("status:read", of: gateway, basicRealm: Self.realm)
        page.get("v1/status") { _, _ in
            Response(await status.statusAnswer())
        }
        page.get("/") { _, _ in
            Response(
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
