/// What a config reload would change: the configuration new requests would run under, and
/// the settings of the file that cannot take effect without a restart.
///
/// Live: the policy of each upstream already running (`upstreams.<name>`, but for `probe`,
/// `ack` and `headers`), the consumers and their keys, and the TLS certificate and key
/// (`server.tls`, when the listener already speaks TLS). Everything else that differs from
/// the running config is named in ``needsRestart`` by its key path and keeps its running value:
/// the rest of `server` (`server.listen` first of all), `storage`, an upstream added or removed,
/// webhooks, alerts, deliveries, retention, metrics, logging, telemetry and audit.
///
/// ```swift
/// let plan = ReloadPlan(running: running, loaded: try loader.load(contentsOf: path))
/// plan.needsRestart   // ["server.listen"]
/// plan.effective      // what to install
/// ```
public struct ReloadPlan: Sendable {
    /// The configuration to run under: `loaded` where it may change live, `running` elsewhere.
    public var effective: GatewayConfig
    /// The key paths whose new values need a restart, in file order (`server.listen`,
    /// `upstreams.billing (added)`).
    public var needsRestart: [String]
    /// The key paths that take effect now (`upstreams.pay`, `consumers`, `server.tls`).
    public var applied: [String]
    /// Why the effective config cannot be used, if it cannot (open mode on a non-loopback
    /// listener that keeps running).
    public var issues: [ConfigIssue]

    /// The plan of replacing `running` with `loaded` (a valid config, as ``ConfigLoader`` read it).
    public init(running: GatewayConfig, loaded: GatewayConfig) {
        var effective = running
        var needsRestart: [String] = []
        var applied: [String] = []
        var issues: [ConfigIssue] = []

        needsRestart += Self.serverChanges(running.server, loaded.server)
        if running.server.tls != nil, loaded.server.tls != nil, running.server.tls != loaded.server.tls {
            effective.server.tls = loaded.server.tls
            applied.append("server.tls")
        }
        if running.storage != loaded.storage { needsRestart.append("storage") }

        if running.consumers != loaded.consumers {
            effective.consumers = loaded.consumers
            applied.append("consumers")
            // The listener keeps its address: open mode stays loopback-only whatever the file says.
            if loaded.consumers.isEmpty, !running.server.listen.isLoopback {
                issues.append(
                    ConfigIssue(
                        path: "consumers",
                        message: "none configured (open mode) while the gateway keeps listening on "
                            + "\(running.server.listen), which is not loopback; open mode is allowed on loopback only"
                    )
                )
            }
        }

        let (upstreams, upstreamsApplied, upstreamsRestart) = Self.upstreams(running.upstreams, loaded.upstreams)
        effective.upstreams = upstreams
        applied += upstreamsApplied
        needsRestart += upstreamsRestart

        if running.deliveries != loaded.deliveries { needsRestart.append("deliveries") }
        if running.webhooks != loaded.webhooks { needsRestart.append("webhooks") }
        if running.alerts != loaded.alerts { needsRestart.append("alerts") }
        if running.metrics != loaded.metrics { needsRestart.append("metrics") }
        if running.logging != loaded.logging { needsRestart.append("logging") }
        if running.telemetry != loaded.telemetry { needsRestart.append("telemetry") }
        if running.audit != loaded.audit { needsRestart.append("audit") }
        if running.retention != loaded.retention { needsRestart.append("retention") }

        self.effective = effective
        self.needsRestart = needsRestart
        self.applied = applied
        self.issues = issues
    }

    /// The `server` keys but `tls` that differ, and `server.tls` turned on or off.
    private static func serverChanges(_ running: GatewayConfig.Server, _ loaded: GatewayConfig.Server) -> [String] {
        var changed: [String] = []
        if running.listen != loaded.listen { changed.append("server.listen") }
        if running.maxBody != loaded.maxBody { changed.append("server.max_body") }
        if running.headerTimeout != loaded.headerTimeout { changed.append("server.header_timeout") }
        if running.idleTimeout != loaded.idleTimeout { changed.append("server.idle_timeout") }
        if running.bodyTimeout != loaded.bodyTimeout { changed.append("server.body_timeout") }
        if running.drain != loaded.drain { changed.append("server.drain") }
        if running.instanceName != loaded.instanceName { changed.append("server.instance") }
        // The listener speaks TLS or it does not; only its certificate can change live.
        if (running.tls == nil) != (loaded.tls == nil) { changed.append("server.tls") }
        return changed
    }

    /// The upstreams to run: each running one with its loaded policy (but for the keys that need
    /// a restart), the removed ones as they run, the added ones not yet. Also what applies
    /// now and what needs a restart.
    private static func upstreams(
        _ running: [UpstreamConfig],
        _ loaded: [UpstreamConfig]
    ) -> ([UpstreamConfig], applied: [String], needsRestart: [String]) {
        var result: [UpstreamConfig] = []
        var applied: [String] = []
        var needsRestart: [String] = []
        for old in running {
            guard var new = loaded.first(where: { $0.name == old.name }) else {
                result.append(old)
                needsRestart.append("upstreams.\(old.name) (removed)")
                continue
            }
            let path = "upstreams.\(old.name)"
            if new.probe?.path != old.probe?.path || new.probe?.every != old.probe?.every {
                needsRestart.append("\(path).probe")
                new.probe = old.probe
            }
            if new.ack != old.ack {
                needsRestart.append("\(path).ack")
                new.ack = old.ack
            }
            // Header values are secrets the log redactor learns at start: a new one must not be logged.
            if new.headers.map(\.name) != old.headers.map(\.name)
                || new.headers.map(\.value) != old.headers.map(\.value)
            {
                needsRestart.append("\(path).headers")
                new.headers = old.headers
            }
            if new != old { applied.append(path) }
            result.append(new)
        }
        for new in loaded where !running.contains(where: { $0.name == new.name }) {
            needsRestart.append("upstreams.\(new.name) (added)")
        }
        return (result, applied, needsRestart)
    }
}
