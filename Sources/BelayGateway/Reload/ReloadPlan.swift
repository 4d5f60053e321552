/// What a config reload would change: the configuration new requests would run under, and
/// the settings of the file that cannot take effect without a restart.
///
/// Live: the policy of each upstream already running (`upstreams.<name>`, its `headers` too,
/// but for `probe` and `ack`), the consumers and their keys, the webhook sources (`webhooks`),
/// the alert sinks (`alerts`), and the TLS certificate and key (`server.tls`, when the listener
/// already speaks TLS). Everything else that differs from the running config is named in
/// ``needsRestart`` by its key path and keeps its running value: the rest of `server`
/// (`server.listen` first of all; a key of `server` this plan does not know by name is named
/// `server`), `storage`, an upstream added or removed, deliveries, retention, metrics, logging,
/// telemetry and audit. A webhook source whose `verify_current_state` fetches from an upstream
/// not running (one the file adds), or that a running `ack` listens to, keeps its running
/// version (`webhooks.<name>`).
///
/// ```swift
/// let plan = ReloadPlan(running: running, loaded: try loader.load(contentsOf: path))
/// plan.needsRestart   // ["server.listen"]
/// plan.applied        // ["upstreams.pay", "webhooks"]
/// plan.effective      // what to install
/// ```
public struct ReloadPlan: Sendable {
    /// The configuration to run under: `loaded` where it may change live, `running` elsewhere.
    public var effective: GatewayConfig
    /// The key paths whose new values need a restart, in file order (`server.listen`,
    /// `upstreams.billing (added)`).
    public var needsRestart: [String]
    /// The key paths that take effect now (`upstreams.pay`, `consumers`, `webhooks`, `alerts`,
    /// `server.tls`).
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
        if running.webhooks != loaded.webhooks {
            var webhooks: [GatewayConfig.WebhookSource] = []
            // A source that fetches its current state from an upstream not running (one this file
            // adds) would forward unverified: it keeps its running version until the restart.
            let names = Set(effective.upstreams.map(\.name))
            for source in loaded.webhooks {
                guard let upstream = source.currentState?.upstream, !names.contains(upstream) else {
                    webhooks.append(source)
                    continue
                }
                if let old = running.webhooks.first(where: { $0.name == source.name }), old != source {
                    webhooks.append(old)
                    needsRestart.append("webhooks.\(source.name)")
                } else if running.webhooks.first(where: { $0.name == source.name }) == nil {
                    needsRestart.append("webhooks.\(source.name) (added)")
                } else {
                    webhooks.append(source)
                }
            }
            // A source the running `ack`s listen to stays until the restart that changes them.
            let listened = Set(effective.upstreams.compactMap { $0.ack?.webhook?.source })
            for source in running.webhooks where listened.contains(source.name) {
                guard !webhooks.contains(where: { $0.name == source.name }) else { continue }
                webhooks.append(source)
                needsRestart.append("webhooks.\(source.name) (removed)")
            }
            effective.webhooks = webhooks
            let byName = { (sources: [GatewayConfig.WebhookSource]) in sources.sorted { $0.name < $1.name } }
            if byName(webhooks) != byName(running.webhooks) { applied.append("webhooks") }
        }
        if running.alerts != loaded.alerts {
            effective.alerts = loaded.alerts
            applied.append("alerts")
        }
        if running.metrics != loaded.metrics { needsRestart.append("metrics") }
        if running.logging != loaded.logging { needsRestart.append("logging") }
        if running.telemetry != loaded.telemetry { needsRestart.append("telemetry") }
        if running.audit != loaded.audit { needsRestart.append("audit") }
        if running.retention != loaded.retention { needsRestart.append("retention") }
        if running.incidents != loaded.incidents { needsRestart.append("incidents") }

        self.effective = effective
        self.needsRestart = needsRestart
        self.applied = applied
        self.issues = issues
    }

    /// One key of `server` that needs a restart: its name, and how to read and copy its value.
    private struct ServerKey: Sendable {
        var name: String
        var differs: @Sendable (GatewayConfig.Server, GatewayConfig.Server) -> Bool
        var adopt: @Sendable (inout GatewayConfig.Server, GatewayConfig.Server) -> Void

        init<Value: Equatable & Sendable>(
            _ name: String,
            _ path: any WritableKeyPath<GatewayConfig.Server, Value> & Sendable
        ) {
            self.name = name
            self.differs = { $0[keyPath: path] != $1[keyPath: path] }
            self.adopt = { $0[keyPath: path] = $1[keyPath: path] }
        }
    }

    /// The keys of `server` but `tls`, by name.
    private static let serverKeys: [ServerKey] = [
        ServerKey("server.listen", \.listen),
        ServerKey("server.max_body", \.maxBody),
        ServerKey("server.header_timeout", \.headerTimeout),
        ServerKey("server.idle_timeout", \.idleTimeout),
        ServerKey("server.body_timeout", \.bodyTimeout),
        ServerKey("server.drain", \.drain),
        ServerKey("server.instance", \.instanceName),
    ]

    /// The `server` keys but `tls` that differ, and `server.tls` turned on or off; `server`
    /// when the two differ in a key not named in ``serverKeys`` (one added since), so that no
    /// setting is ever taken for live by omission.
    private static func serverChanges(_ running: GatewayConfig.Server, _ loaded: GatewayConfig.Server) -> [String] {
        var changed = serverKeys.filter { $0.differs(running, loaded) }.map(\.name)
        // The listener speaks TLS or it does not; only its certificate can change live.
        if (running.tls == nil) != (loaded.tls == nil) { changed.append("server.tls") }
        var rest = loaded
        for key in serverKeys { key.adopt(&rest, running) }
        rest.tls = running.tls
        if rest != running { changed.append("server") }
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
            if new != old { applied.append(path) }
            result.append(new)
        }
        for new in loaded where !running.contains(where: { $0.name == new.name }) {
            needsRestart.append("upstreams.\(new.name) (added)")
        }
        return (result, applied, needsRestart)
    }
}
