import BelayStore
import Hummingbird
import Logging

extension Router where Context == GatewayRequestContext {
    /// The audit trail's routes: thin translations to ``AuditService``.
    func addAuditRoutes(_ audit: AuditService<ContinuousClock>, gateway: Gateway) {
        get("v1/requests") { request, _ in
            let viewer: String?
            switch gateway.authorize(request, anyOf: ["requests:read"]) {
            case .success(let identity): viewer = gateway.viewer(identity)
            case .failure(let refusal): return refusal.response
            }
            var parameters: [String: String] = [:]
            for (name, value) in request.uri.queryParameters { parameters[String(name)] = String(value) }
            return Response(await audit.list(parameters, requestID: Gateway.newRequestID(), viewer: viewer))
        }
        get("v1/requests/:id") { request, context in
            let viewer: String?
            switch gateway.authorize(request, anyOf: ["requests:read"]) {
            case .success(let identity): viewer = gateway.viewer(identity)
            case .failure(let refusal): return refusal.response
            }
            let id = context.parameters.get("id") ?? ""
            return Response(await audit.show(id, requestID: Gateway.newRequestID(), viewer: viewer))
        }
    }
}

/// The audit trail of `config`: its recorder, a service to run in any case (it enforces
/// retention on what was recorded, even once `audit.enabled` is false); the proxy observer,
/// the recorder itself when `audit.enabled`, else nil; and the service its routes call.
func makeAuditTrail(
    config: GatewayConfig,
    store: any AuditStore,
    logger: Logger
) -> (
    recorder: AuditRecorder<ContinuousClock>,
    observer: AuditRecorder<ContinuousClock>?,
    service: AuditService<ContinuousClock>
) {
    let wall = WallClock.system(ContinuousClock())
    var configuration = AuditRecorder<ContinuousClock>.Configuration()
    configuration.retention = config.audit.retention
    configuration.maxBytes = Int64(config.audit.maxSize)
    let recorder = AuditRecorder(store: store, configuration: configuration, wall: wall, logger: logger)
    let observer = config.audit.enabled ? recorder : nil
    return (recorder, observer, AuditService(store: store, recorder: observer, wall: wall))
}
