import BelayStore
import Hummingbird
import Logging

extension Router where Context == GatewayRequestContext {
    /// The audit trail's routes: thin translations to ``AuditService``.
    func addAuditRoutes(_ audit: AuditService<ContinuousClock>, gateway: Gateway) {
        let read = requiring("requests:read", of: gateway)
        read.get("v1/requests") { request, context in
            let parameters = request.uri.queryDictionary
            let viewer = gateway.viewer(context.identity)
            return Response(await audit.list(parameters, requestID: context.requestID, viewer: viewer))
        }
        read.get("v1/requests/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            let viewer = gateway.viewer(context.identity)
            return Response(await audit.show(id, requestID: context.requestID, viewer: viewer))
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
