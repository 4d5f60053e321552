import Belay
import BelayHTTP
import Foundation
import Logging
public import ServiceLifecycle
public import UnixSignals

/// Re-reads the config file (on SIGHUP or `POST /v1/admin/reload`) and, when it is valid,
/// makes it the one new requests run under; requests in flight finish under the runtime they
/// began with.
///
/// What changes live and what needs a restart is ``ReloadPlan``'s. A valid file takes effect
/// at once: the gateway's runtime (upstream clients, webhook forwarders, consumers) is replaced
/// whole, the services that read the rest (the webhook inbox, the alerter, the delivery worker)
/// are handed the new config, and a renewed TLS certificate serves the next connection. The
/// log redactor learns the file's secrets as soon as it is read, before anything could log them. An invalid one is refused with every
/// problem, and the running config is kept. Each reload is logged in one line (`notice` when
/// applied, `error` when refused) and counted (`belay_config_reloads_total{outcome}`).
///
/// A client a reload replaced is shut down once the longest call it could still be running has
/// ended: twice its policy's total timeout plus 5 s after the reload (or when the gateway stops,
/// if that comes first). Reloads run one at a time.
///
/// It is a `Service`: its `run()` listens for its signals (none in tests: SIGHUP would be the
/// whole process's) and closes replaced clients, until graceful shutdown.
/// Reads the config file as `serve` did at start (``ConfigLoader/load(contentsOf:)``).
public typealias ConfigSource = @Sendable () throws(ConfigError) -> GatewayConfig

/// How a gateway reloads its config (``buildApplication(config:logger:eventSink:observers:tracer:reload:onServerRunning:)``).
public struct ReloadOptions: Sendable {
    /// Re-reads the config file.
    public var source: ConfigSource
    /// The signals that reload it, e.g. `[.sighup]`; none by default (a test's process is not
    /// the gateway's alone).
    public var signals: [UnixSignal]

    /// Creates the options.
    public init(source: @escaping ConfigSource, signals: [UnixSignal] = []) {
        self.source = source
        self.signals = signals
    }
}

public actor ConfigReloader<C: Clock>: Service where C.Duration == Duration {
    private let gateway: Gateway
    private let source: ConfigSource?
    private let tls: ServerTLSContext?
    private let hook: @Sendable (UpstreamClient) -> Void
    private let apply: @Sendable (GatewayConfig) -> Void
    private let metrics: GatewayMetrics?
    private let signals: UnixSignalsSequence?
    private let clock: C
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// Replaced clients and how long to wait before closing each.
    private let retirements: AsyncStream<Retirement>
    private let retire: AsyncStream<Retirement>.Continuation

    private struct Retirement: Sendable {
        var client: UpstreamClient
        var after: Duration
    }

    /// A reloader of `gateway`'s runtime from `source`, replacing the certificate of `tls`.
    ///
    /// `hook` is called with each upstream client a reload makes (the health model watches its
    /// endpoints); `apply` with the config in force after each applied reload (the services that
    /// read webhooks and alerts take theirs); `now` stamps outcomes and the last-success gauge. `signals` (already
    /// trapping, so that none arriving before ``run()`` kills the process) each reload.
    init(
        gateway: Gateway,
        source: ConfigSource?,
        tls: ServerTLSContext?,
        hook: @escaping @Sendable (UpstreamClient) -> Void,
        apply: @escaping @Sendable (GatewayConfig) -> Void = { _ in },
        metrics: GatewayMetrics?,
        signals: UnixSignalsSequence?,
        clock: C,
        now: @escaping @Sendable () -> Date,
        logger: Logger
    ) {
        self.gateway = gateway
        self.source = source
        self.tls = tls
        self.hook = hook
        self.apply = apply
        self.metrics = metrics
        self.signals = signals
        self.clock = clock
        self.now = now
        self.logger = logger
        (retirements, retire) = AsyncStream.makeStream(of: Retirement.self)
    }

    /// Re-reads the config and applies it, or refuses it; logs and counts the outcome.
    public func reload(trigger: ReloadOutcome.Trigger) -> ReloadOutcome {
        let outcome = attempt(trigger: trigger)
        record(outcome)
        return outcome
    }

    /// The reload itself: read, plan, build the new runtime, swap the certificate, install.
    private func attempt(trigger: ReloadOutcome.Trigger) -> ReloadOutcome {
        func refused(_ problems: [ConfigIssue]) -> ReloadOutcome {
            ReloadOutcome(status: .refused, trigger: trigger, at: now(), problems: problems)
        }
        guard let source else {
            return refused([ConfigIssue(path: "", message: "the gateway was started without a config file to re-read")])
        }
        let loaded: GatewayConfig
        do {
            loaded = try source()
        } catch {
            return refused(error.issues)
        }
        // Before anything logs this file's values, valid plan or not: its secrets are redacted.
        gateway.redactor.learn(from: loaded)
        let running = gateway.runtime
        let plan = ReloadPlan(running: running.config, loaded: loaded)
        guard plan.issues.isEmpty else { return refused(plan.issues) }
        let prepared: Gateway.Prepared
        switch gateway.prepare(plan.effective) {
        case .failure(let failure):
            discard(failure.made)
            return refused(failure.issues.map { ConfigIssue(path: $0.option, message: $0.message) })
        case .success(let built):
            prepared = built
        }
        let next = prepared.runtime
        let before = Array(running.clients.values) + running.forwarders.values
        let made = (Array(next.clients.values) + next.forwarders.values).filter { client in
            !before.contains { $0 === client }
        }
        if plan.applied.contains("server.tls"), let tls, let certificate = plan.effective.server.tls {
            do {
                try tls.replace(with: certificate)
            } catch {
                discard(made)
                return refused([
                    ConfigIssue(path: "server.tls", message: "cannot serve this certificate and key: \(error)")
                ])
            }
        }
        for client in made where next.forwarders[client.policy.name] !== client { hook(client) }
        gateway.install(prepared)
        apply(next.config)
        for client in prepared.replaced {
            retire.yield(Retirement(client: client, after: client.policy.totalTimeout * 2 + .seconds(5)))
        }
        for warning in loaded.warnings {
            logger.warning(
                "config warning: \(warning.path) \(warning.message)",
                metadata: ["belay.config.path": "\(warning.path)"]
            )
        }
        return ReloadOutcome(
            status: .applied,
            trigger: trigger,
            at: now(),
            applied: plan.applied,
            needsRestart: plan.needsRestart
        )
    }

    /// Closes clients made for a refused reload (nothing has used them).
    private func discard(_ clients: [UpstreamClient]) {
        gateway.retire(clients)
        for client in clients { retire.yield(Retirement(client: client, after: .zero)) }
    }

    /// One log line and the metrics of `outcome`.
    private func record(_ outcome: ReloadOutcome) {
        var metadata: Logger.Metadata = [
            "belay.reload.outcome": .string(outcome.status.rawValue),
            "belay.reload.trigger": .string(outcome.trigger.rawValue),
        ]
        if !outcome.applied.isEmpty {
            metadata["belay.reload.applied"] = .string(outcome.applied.joined(separator: ","))
        }
        if !outcome.needsRestart.isEmpty {
            metadata["belay.reload.needs_restart"] = .string(outcome.needsRestart.joined(separator: ","))
        }
        switch outcome.status {
        case .applied:
            logger.notice("\(outcome.summary)", metadata: metadata)
        case .refused:
            metadata["belay.config.problems"] = .array(outcome.problems.map { .string($0.description) })
            logger.error("\(outcome.summary)", metadata: metadata)
        }
        metrics?.reloaded(applied: outcome.status == .applied, at: outcome.at)
    }

    public nonisolated func run() async throws {
        let signals = self.signals
        let retirements = self.retirements
        let retire = self.retire
        let gateway = self.gateway
        let clock = self.clock
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                if let signals {
                    group.addTask {
                        for await _ in signals.cancelOnGracefulShutdown() {
                            _ = await self.reload(trigger: .signal)
                        }
                    }
                }
                for await retirement in retirements {
                    group.addTask {
                        // Cancelled (the gateway stops): the gateway closes the client itself.
                        guard (try? await clock.sleep(for: retirement.after)) != nil else { return }
                        await gateway.shutDownRetired(retirement.client)
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            retire.finish()
        }
    }
}
