import Belay
import BelayStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension GatewayMetrics {
    /// The metrics `config` asks for: nil when `metrics.enabled` is false.
    static func make(for config: GatewayConfig) -> GatewayMetrics? {
        config.metrics.enabled ? GatewayMetrics(config: config) : nil
    }

    /// `sink` and `metrics` together, as the gateway's extra event sink.
    static func eventSink(
        _ sink: (any ResilienceEventSink)?,
        _ metrics: GatewayMetrics?
    ) -> (any ResilienceEventSink)? {
        guard let metrics else { return sink }
        guard let sink else { return metrics }
        return MultiplexEventSink([sink, metrics])
    }
}

extension Router where Context == GatewayRequestContext {
    /// `GET /metrics`: the Prometheus text format, scoped `metrics:read` when consumers are
    /// configured (open otherwise, like every management route). Absent when metrics are off.
    func addMetricsRoute(
        _ metrics: GatewayMetrics?,
        gateway: Gateway,
        store: any DeliveryStore,
        auditLosses: @escaping @Sendable () -> (dropped: Int, failed: Int) = { (0, 0) },
        health: @escaping @Sendable () -> [UpstreamHealthReport] = { [] },
        now: @escaping @Sendable () -> Date
    ) {
        guard let metrics else { return }
        requiring("metrics:read", of: gateway).get("metrics") { _, _ in
            let losses = auditLosses()
            metrics.readAudit(dropped: losses.dropped, failed: losses.failed)
            let text = await metrics.scrape(clients: gateway.clients, health: health(), store: store, now: now())
            return Response(
                status: .ok,
                headers: [.contentType: GatewayMetrics.contentType, .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: text))
            )
        }
    }
}
