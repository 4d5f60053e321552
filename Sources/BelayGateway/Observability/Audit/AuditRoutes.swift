import BelayStore
import Hummingbird
import Logging

extension Router where Context == GatewayRequestContext {
    /// The audit trail's routes: thin translations to ``AuditService``.
    func addAuditRoutes(_ audit: AuditService<ContinuousClock>, gateway: Gateway) {
        get("v1/requests") { request, _ in
            if let refusal = gateway.authorized(request, scope: "requests:read") { return refusal }
            var parameters: [String: String] = [:]
            for (name, value) in request.uri.queryParameters { parameters[String(name)] = String(value) }
            return Response(await audit.list(parameters, requestID: Gateway.requestID(from: request.headers)))
        }
        get("v1/requests/:id") { request, context in
            if let refusal = gateway.authorized(request, scope: "requests:read") { return refusal }
            let id = context.parameters.get("id") ?? ""
            return Response(await audit.show(id, requestID: Gateway.requestID(from: request.headers)))
        }
    }
}

/// The audit trail of `config`: its recorder (nil when `audit.enabled` is false; a proxy
/// observer and a service to run) and the service its routes call.
func makeAuditTrail(
    config: GatewayConfig,
    store: any AuditStore,
    logger: Logger
) -> (recorder: AuditRecorder<ContinuousClock>?, service: AuditService<ContinuousClock>) {
    let wall = WallClock.system(ContinuousClock())
    var recorder: AuditRecorder<ContinuousClock>?
    if config.audit.enabled {
        var configuration = AuditRecorder<ContinuousClock>.Configuration()
        configuration.retention = config.audit.retention
        configuration.maxBytes = Int64(config.audit.maxSize)
        recorder = AuditRecorder(store: store, configuration: configuration, wall: wall, logger: logger)
    }
    return (recorder, AuditService(store: store, recorder: recorder, wall: wall))
}
