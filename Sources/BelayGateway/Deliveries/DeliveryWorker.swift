public import BelayStore
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Delivers the queue: leases due deliveries, sends each through its upstream's policy,
/// and records the attempt and the decision (delivered, retry at T, dead, held back).
///
/// - At most ``Configuration/concurrency`` deliveries per upstream are in flight at once,
///   across every instance sharing the store.
/// - An upstream whose breaker is open is not claimed from: its deliveries wait without
///   spending attempts until the break ends.
/// - Never two sends of one delivery at once: each claim carries a fencing token
///   (``Lease``); the worker renews the lease every third of its length while the attempt
///   runs, and an attempt whose lease was lost (another claim replaced it) is cancelled and
///   records nothing. Every attempt, its answer's body included, is bounded by the upstream
///   policy's deadlines. A worker that dies leaves leases that expire, and any worker then
///   resumes those deliveries (with the same idempotency key).
/// - It sleeps until the next delivery is due, and wakes at once on ``wake()`` (an accept).
/// - On graceful shutdown it stops claiming, lets attempts in flight finish, and releases
///   whatever it still holds so a restart resumes at once.
public final class DeliveryWorker<C: Clock>: Service, Sendable where C.Duration == Duration {
    /// The worker's options.
    public struct Configuration: Sendable {
        /// Deliveries in flight per upstream. Default 8.
        public var concurrency = 8
        /// How long a claim is held before another worker may take it over. Default 30 s.
        public var lease: Duration = .seconds(30)
        /// The longest sleep when nothing is due (other instances may add work). Default 5 s.
        public var idlePoll: Duration = .seconds(5)
        /// How soon to look again when something is due but the claim just made took nothing:
        /// other instances hold the upstream's whole concurrency, or are changing its rows.
        /// Default 100 ms.
        public var contendedPoll: Duration = .milliseconds(100)
        /// How long caller keys are remembered. Default 24 h.
        public var keyRetention: Duration = .seconds(86_400)
        /// How often forgotten keys are swept. Default 10 minutes.
        public var sweepEvery: Duration = .seconds(600)

        /// Creates the default options.
        public init() {}
    }

    let store: any DeliveryStore
    private let sender: any DeliverySender
    let planner: DeliveryPlanner
    let configuration: Configuration
    /// The upstreams whose deliveries this worker sends (a reload may add a webhook source's
    /// forwards: ``serve(upstreams:)``).
    var upstreams: [String] { served.withLock { $0 } }
    private let served: Mutex<[String]>
    let wall: WallClock<C>
    private let owner: String
    let alert: @Sendable (Alert) -> Void
    private let recorded: @Sendable (Delivery, DeliveryStatus, Bool) -> Void
    private let random: @Sendable () -> Double
    let logger: Logger
    private let doorbell = Doorbell()
    private let inFlight = Mutex<[String: Int]>([:])
    private let nextSweep = Mutex<Date?>(nil)
    /// The leases of the attempts running now, by delivery id, and when the run loop plans to
    /// look again (set while it sleeps): one lock, so a lease registered after the loop planned
    /// its sleep always sees the plan and wakes it if its renewal comes first.
    private let held = Mutex(HeldLeases())

    private struct HeldLeases {
        var leases: [String: HeldLease] = [:]
        var plannedWake: Date?

        subscript(id: String) -> HeldLease? {
            get { leases[id] }
            set { leases[id] = newValue }
        }
    }

    /// A lease an attempt runs under: when to renew it, and how to tell the attempt it was lost.
    private struct HeldLease {
        var lease: Lease
        var renewAt: Date
        /// Set when a renewal found the lease gone (or the attempt ended): the watcher returns.
        var ended = false
        var watcher: CheckedContinuation<Void, Never>?
    }

    /// - Parameters:
    ///   - upstreams: the upstreams whose deliveries this worker sends.
    ///   - owner: this worker's lease name; unique per process.
    ///   - alert: receives "still trying", "dead" and "ack overdue" alerts.
    ///   - random: numbers in `0..<1` placing each delay's jitter.
    ///   - recorded: told of each recorded decision (metrics, incidents): the delivery as it
    ///     was claimed, its new status, and whether an attempt was made.
    public init(
        store: any DeliveryStore,
        sender: any DeliverySender,
        planner: DeliveryPlanner,
        configuration: Configuration = .init(),
        upstreams: [String],
        wall: WallClock<C>,
        owner: String = "worker-\(UUID().uuidString.lowercased().prefix(8))",
        alert: @escaping @Sendable (Alert) -> Void = { _ in },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        recorded: @escaping @Sendable (Delivery, DeliveryStatus, Bool) -> Void = { _, _, _ in },
        logger: Logger
    ) {
        self.store = store
        self.sender = sender
        self.planner = planner
        self.configuration = configuration
        self.served = Mutex(upstreams)
        self.wall = wall
        self.owner = owner
        self.alert = alert
        self.random = random
        self.recorded = recorded
        self.logger = logger
    }

    /// Sends the deliveries of `upstreams` from now on (a config reload added or removed a
    /// webhook source's forwards); the deliveries of an upstream no longer served wait, pending,
    /// until one is again.
    public func serve(upstreams: [String]) {
        served.withLock { $0 = upstreams }
        wake()
    }

    /// Tells the worker new work may be due now.
    public func wake() {
        doorbell.ring()
    }

    public func run() async throws {
        do {
            let resumed = try await store.releaseAbandoned(now: wall.now())
            if resumed > 0 {
                logger.notice(
                    "resuming deliveries a previous run left in flight",
                    metadata: ["belay.count": "\(resumed)"]
                )
            }
        } catch {
            logger.error("could not resume abandoned deliveries", metadata: ["belay.error": "\(error)"])
        }
        let stopping = Mutex(false)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                while !stopping.withLock({ $0 }) && !Task.isCancelled {
                    await renewDueLeases()
                    await sweepKeysIfDue()
                    await escalateAged()
                    let claimed = await claimDue()
                    for item in claimed {
                        group.addTask {
                            await self.handle(item)
                            self.doorbell.ring()
                        }
                    }
                    if !claimed.isEmpty { continue }
                    let wake = await nextWake()
                    if stopping.withLock({ $0 }) { break }
                    await doorbell.wait(until: wall.instant(at: wake), clock: wall.clock)
                    held.withLock { $0.plannedWake = nil }
                }
            }
        } onGracefulShutdown: {
            stopping.withLock { $0 = true }
            self.doorbell.ring()
        }
        do {
            try await store.release(owner: owner, now: wall.now())
        } catch {
            logger.error("could not release delivery leases", metadata: ["belay.error": "\(error)"])
        }
    }

    /// Claims what is due, within each available upstream's free capacity, and counts it
    /// as in flight.
    func claimDue() async -> [ClaimedDelivery] {
        var limits: [String: Int] = [:]
        let busy = inFlight.withLock { $0 }
        for upstream in upstreams where sender.pause(of: upstream) == nil {
            let free = configuration.concurrency - busy[upstream, default: 0]
            if free > 0 { limits[upstream] = free }
        }
        guard !limits.isEmpty else { return [] }
        let now = wall.now()
        do {
            // The concurrency holds across every instance sharing the store, not per instance.
            let claimed = try await store.claim(
                limits: limits,
                inFlightLimit: configuration.concurrency,
                now: now,
                leaseUntil: now.adding(configuration.lease),
                owner: owner
            )
            inFlight.withLock { counts in
                for item in claimed { counts[item.delivery.upstream, default: 0] += 1 }
            }
            return claimed
        } catch {
            logger.error("could not claim due deliveries", metadata: ["belay.error": "\(error)"])
            return []
        }
    }

    /// When to look again: the next due delivery of an upstream with free capacity, the
    /// end of a paused upstream's break, the next lease to renew, or the idle poll, whichever
    /// is first.
    func nextWake() async -> Date {
        let now = wall.now()
        var wake = now.adding(configuration.idlePoll)
        let busy = inFlight.withLock { $0 }
        var ready: [String] = []
        for upstream in upstreams where busy[upstream, default: 0] < configuration.concurrency {
            if let pause = sender.pause(of: upstream) {
                wake = min(wake, now.adding(pause))
            } else {
                ready.append(upstream)
            }
        }
        do {
            // Called after a claim that took nothing: what is due now was left by that claim (another
            // instance holds the upstream's concurrency, or its rows), so look again shortly, not at once.
            if let due = try await store.nextDue(upstreams: ready, owner: owner) {
                wake = min(wake, max(due, now.adding(configuration.contendedPoll)))
            }
        } catch {
            logger.error("could not read the next due delivery", metadata: ["belay.error": "\(error)"])
        }
        if let escalation = await nextEscalation() {
            wake = min(wake, max(escalation, now.adding(configuration.contendedPoll)))
        }
        // Last, under the lock a new lease registers under: the plan includes every renewal
        // registered so far, and any later one sees the plan.
        return held.withLock { state in
            if let renewal = state.leases.values.filter({ !$0.ended }).map(\.renewAt).min() {
                wake = min(wake, max(renewal, now))
            }
            state.plannedWake = wake
            return wake
        }
    }

    /// Sends one claimed delivery, records what came of it and frees its slot.
    func handle(_ claimed: ClaimedDelivery) async {
        let delivery = claimed.delivery
        defer { inFlight.withLock { $0[delivery.upstream, default: 1] -= 1 } }
        // Looked up first when the provider may have the order already (`ack.poll`): a
        // confirmation, or the reconcile before a resend.
        var lookups: [DeliveryAttempt] = []
        if let poll = planner.lookupFirst(claimed) {
            guard let looked = await lookUnderLease(claimed, poll: poll) else { return }
            if let decision = looked.decision {
                await record(decision, attempt: looked.row, for: delivery, lease: claimed.lease, at: looked.at)
                return
            }
            lookups.append(looked.row)
            // The other system may have confirmed it while it was looked up: then it is not sent.
            switch await confirmedMeanwhile(claimed) {
            case .no:
                break
            case .settled:
                logger.info(
                    "a delivery was confirmed while its order was looked up; it is not sent again",
                    metadata: ["belay.delivery.id": "\(delivery.id)", "belay.upstream": "\(delivery.upstream)"]
                )
                return
            case .noted:
                var row = looked.row
                row.decision = "GET: not there; but the other system confirmed it meanwhile: not sent again"
                let settle = planner.waiting(.pending, until: looked.at, row.decision)
                // The confirmation noted on the row settles it in the same write (``DeliveryStore``).
                await record(settle, attempt: row, for: delivery, lease: claimed.lease, at: looked.at)
                return
            }
        }
        if claimed.reason == .ackOverdue {
            if let end = planner.decideOverdueAck(for: delivery) {
                await record(end, attempt: nil, lookups: lookups, for: delivery, lease: claimed.lease, at: wall.now())
                return
            }
            alert(ackOverdueAlert(for: delivery, at: wall.now()))
        }
        let startedAt = wall.now()
        let start = wall.clock.now
        guard let result = await underLease(claimed, { await self.sender.send(delivery) }) else {
            logger.notice(
                "a delivery's lease was lost while it was being sent (another claim took it); the attempt was cancelled and not recorded",
                metadata: ["belay.delivery.id": "\(delivery.id)", "belay.upstream": "\(delivery.upstream)"]
            )
            return
        }
        let elapsed = start.duration(to: wall.clock.now)
        let now = wall.now()
        var decision = planner.decide(after: result, for: delivery, now: now, unit: random())
        if claimed.reason == .ackOverdue {
            // The trail says why it went out again.
            let wait = ConfigDuration.format(planner.ackTimeout(for: delivery.upstream))
            decision.summary = "sent again, unconfirmed \(wait) after its 2xx: " + decision.summary
        }
        var attempt: DeliveryAttempt?
        switch result {
        case .answered(let status, _, let endpoint):
            attempt = DeliveryAttempt(
                number: delivery.attemptCount + 1,
                startedAt: startedAt,
                durationMilliseconds: elapsed.milliseconds,
                endpoint: endpoint,
                statusCode: status,
                errorClass: nil,
                decision: decision.summary
            )
        case .failed(let errorClass, _, let endpoint), .refused(_, let errorClass, let endpoint):
            attempt = DeliveryAttempt(
                number: delivery.attemptCount + 1,
                startedAt: startedAt,
                durationMilliseconds: elapsed.milliseconds,
                endpoint: endpoint,
                statusCode: nil,
                errorClass: errorClass,
                decision: decision.summary
            )
        case .held:
            attempt = nil
        }
        await record(decision, attempt: attempt, lookups: lookups, for: delivery, lease: claimed.lease, at: now)
    }

    /// Looks the claimed delivery's order up under its lease: the trail's row and, unless it is
    /// to be sent now, the decision. Nil if the lease was lost meanwhile (nothing is recorded).
    private func lookUnderLease(
        _ claimed: ClaimedDelivery,
        poll: UpstreamConfig.Ack.Poll
    ) async -> (row: DeliveryAttempt, decision: DeliveryPlanner.Decision?, at: Date)? {
        let delivery = claimed.delivery
        let path = poll.path(forKey: delivery.idempotencyKey)
        let startedAt = wall.now()
        let start = wall.clock.now
        guard let result = await underLease(claimed, { await self.sender.look(delivery, path: path) }) else {
            logger.notice(
                "a delivery's lease was lost while its order was looked up (another claim took it); nothing was recorded",
                metadata: ["belay.delivery.id": "\(delivery.id)", "belay.upstream": "\(delivery.upstream)"]
            )
            return nil
        }
        let elapsed = start.duration(to: wall.clock.now)
        let now = wall.now()
        let decision = planner.decide(afterLookup: result, of: path, for: claimed, now: now, unit: random())
        var row = DeliveryAttempt(
            number: delivery.attemptCount,
            startedAt: startedAt,
            durationMilliseconds: elapsed.milliseconds,
            endpoint: nil,
            statusCode: nil,
            errorClass: nil,
            decision: decision?.summary ?? "GET \(path): not there; sending it again",
            kind: .lookup
        )
        switch result {
        case .answered(let status, _, let endpoint):
            row.statusCode = status
            row.endpoint = endpoint
        case .failed(let errorClass, _, let endpoint), .refused(_, let errorClass, let endpoint):
            row.errorClass = errorClass
            row.endpoint = endpoint
        case .held:
            row.errorClass = "held"
        }
        return (row, decision, now)
    }

    /// What the other system did to a claimed delivery while it was being looked up.
    private enum Meanwhile {
        /// Nothing: it is still this claim's, unconfirmed.
        case no
        /// Confirmed (or rejected) and settled: the claim is gone.
        case settled
        /// Confirmed (or rejected) and noted on the row, to take effect when this claim records.
        case noted
    }

    /// Reads the claimed delivery again (only between a lookup that says "not there" and the
    /// resend: rare by design). A read that fails answers `.no`: the resend is then fenced
    /// like any other write.
    private func confirmedMeanwhile(_ claimed: ClaimedDelivery) async -> Meanwhile {
        guard let stored = try? await store.delivery(id: claimed.delivery.id)?.0 else { return .no }
        guard stored.status == .inFlight, stored.leaseToken == claimed.lease.token,
            stored.leaseOwner == claimed.lease.owner
        else { return .settled }
        // A webhook's confirmation settles it whatever the attempt comes to; Belay's own `POST …/ack`
        // before a 2xx waits for the 2xx (``DeliveryStore/acknowledge(id:now:)``): it is sent.
        return stored.ackEvent != nil ? .noted : .no
    }

    /// Runs `body` (a send or a lookup of the claimed delivery) while its lease is renewed by
    /// the run loop; nil if the lease was lost first (`body` is then cancelled: another claim
    /// may be sending it).
    private func underLease<R: Sendable>(
        _ claimed: ClaimedDelivery,
        _ body: @escaping @Sendable () async -> R
    ) async -> R? {
        let id = claimed.delivery.id
        let renewAt = wall.now().adding(configuration.lease / 3)
        let token = claimed.lease.token
        let (wakeLoop, replaced) = held.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            // This process may claim a delivery again while an earlier attempt of its own still
            // runs (that attempt's lease expired unseen): the earlier one has lost its lease, so
            // its watcher is woken and its attempt cancelled.
            let replaced = state[id]?.watcher
            state[id] = HeldLease(lease: claimed.lease, renewAt: renewAt)
            return (state.plannedWake.map { renewAt < $0 } ?? false, replaced)
        }
        replaced?.resume()
        // The run loop plans to sleep past this lease's first renewal: let it plan again.
        if wakeLoop { doorbell.ring() }
        defer { endWatch(id, token: token, remove: true) }
        return await withTaskGroup(of: R?.self, returning: R?.self) { group in
            group.addTask { await body() }
            group.addTask {
                await self.waitUntilLeaseLost(id, token: token)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Returns when the lease `token` of delivery `id` is lost (or replaced by a newer claim),
    /// or when the calling task is cancelled.
    private func waitUntilLeaseLost(_ id: String, token: Int64) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = held.withLock { state -> Bool in
                    guard let lease = state[id], lease.lease.token == token, !lease.ended else { return true }
                    state[id]?.watcher = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            endWatch(id, token: token, remove: false)
        }
    }

    /// Ends the watch of lease `token` of delivery `id`, waking its watcher; with `remove`,
    /// forgets it. Nothing happens if a newer claim's lease replaced it.
    private func endWatch(_ id: String, token: Int64, remove: Bool) {
        let watcher = held.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state[id]?.lease.token == token else { return nil }
            let watcher = state[id]?.watcher
            if remove {
                state[id] = nil
            } else {
                state[id]?.ended = true
                state[id]?.watcher = nil
            }
            return watcher
        }
        watcher?.resume()
    }

    /// Renews every lease whose renewal is due; a lease found lost ends its attempt.
    func renewDueLeases() async {
        let now = wall.now()
        let due = held.withLock { state in
            state.leases.filter { !$0.value.ended && $0.value.renewAt <= now }.map { ($0.key, $0.value.lease) }
        }
        for (id, lease) in due {
            do {
                if try await store.renew(id: id, lease: lease, until: now.adding(configuration.lease)) {
                    held.withLock { state in
                        if state[id]?.lease.token == lease.token {
                            state[id]?.renewAt = now.adding(configuration.lease / 3)
                        }
                    }
                } else {
                    endWatch(id, token: lease.token, remove: false)
                }
            } catch {
                // Try again soon: the lease still has two thirds of its time.
                logger.error(
                    "could not renew a delivery's lease",
                    metadata: ["belay.delivery.id": "\(id)", "belay.error": "\(error)"]
                )
                held.withLock { state in
                    if state[id]?.lease.token == lease.token { state[id]?.renewAt = now.adding(.seconds(1)) }
                }
            }
        }
    }

    private func record(
        _ decision: DeliveryPlanner.Decision,
        attempt: DeliveryAttempt?,
        lookups: [DeliveryAttempt] = [],
        for delivery: Delivery,
        lease: Lease,
        at now: Date
    ) async {
        let counts = attempt != nil && decision.countsAsAttempt
        let outcome = DeliveryOutcome(
            status: decision.status,
            attempt: attempt,
            nextAttemptAt: decision.nextAttemptAt,
            lastError: decision.lastError,
            escalated: delivery.escalated || decision.alert == .stillTrying,
            at: now,
            escalateAt: escalateAt(after: counts ? attempt : nil, decision: decision),
            lookups: lookups,
            counts: counts
        )
        var metadata: Logger.Metadata = [
            "belay.delivery.id": "\(delivery.id)",
            "belay.upstream": "\(delivery.upstream)",
            "belay.decision": "\(decision.summary)",
        ]
        if let attempt {
            metadata["belay.attempt"] = .string(counts ? String(attempt.number) : "lookup")
            if let endpoint = attempt.endpoint { metadata["belay.endpoint"] = .string(endpoint) }
        }
        do {
            guard try await store.finish(id: delivery.id, lease: lease, outcome: outcome) else {
                logger.notice(
                    "a delivery changed while it was being sent; its attempt was not recorded",
                    metadata: metadata
                )
                return
            }
        } catch {
            logger.error(
                "could not record a delivery attempt; it will be retried when its lease ends",
                metadata: metadata.merging(["belay.error": "\(error)"]) { $1 }
            )
            return
        }
        // An attempt that failed (the delivery tries again later, or is dead) is a decision worth
        // seeing at info; a delivered one, or a delivery held while its upstream is paused, is not.
        let failed = attempt != nil && decision.status != .delivered && decision.status != .acknowledged
        logger.log(level: failed ? .info : .debug, "delivery attempt recorded", metadata: metadata)
        recorded(delivery, decision.status, attempt?.kind == .send)
        let attempts = delivery.attemptCount + (counts ? 1 : 0)
        // Resolved when it got through; a lookup that found it not there yet changes nothing.
        let gotThrough =
            decision.status == .acknowledged || (decision.status == .delivered && attempt?.kind != .lookup)
        if delivery.escalated, gotThrough {
            alert(Self.delivered(delivery, attempts: attempts, at: now))
        }
        guard let kind = decision.alert else { return }
        if await settledByTheOtherSystem(delivery, attempts: attempts, at: now) { return }
        if kind == .dead, let source = Gateway.webhookSource(ofForward: delivery.upstream) {
            alert(Self.webhookDead(delivery, source: source, attempts: attempts, decision: decision, at: now))
            return
        }
        let summary: String
        switch kind {
        case .stillTrying:
            summary =
                "\(delivery.upstream) delivery \(delivery.id) failed \(attempts) attempts since "
                + "\(delivery.createdAt.iso8601) (last: \(decision.lastError ?? "unknown")); still trying, next at "
                + "\(decision.nextAttemptAt?.iso8601 ?? "?")"
        default:
            summary =
                "\(delivery.upstream) delivery \(delivery.id) is dead after \(attempts) attempts "
                + "(\(decision.summary)); replay it with POST /v1/deliveries/\(delivery.id)/retry"
        }
        alert(
            Alert(
                kind: kind,
                severity: kind == .dead ? "critical" : "warning",
                summary: summary,
                upstream: delivery.upstream,
                subject: delivery.id,
                since: delivery.createdAt,
                lastError: decision.lastError,
                nextAttemptAt: decision.nextAttemptAt,
                attempts: attempts,
                link: "/v1/deliveries/\(delivery.id)",
                at: now
            )
        )
    }

    /// Whether the other system's confirmation or rejection, noted while this failing attempt
    /// was in flight, settled the delivery when the attempt was recorded (``DeliveryStore``'s
    /// `finish` applies it in the same write). Its "still trying" or "dead" alert would then
    /// be about an order that went through, or one already alerted as rejected: the worker
    /// sends none, and resolves a "still trying" sent earlier when the delivery was confirmed.
    /// Read again only on this path, an attempt that alerts: rare by design.
    private func settledByTheOtherSystem(_ delivery: Delivery, attempts: Int, at now: Date) async -> Bool {
        guard delivery.requireAck else { return false }
        let stored: Delivery?
        do {
            stored = try await store.delivery(id: delivery.id)?.0
        } catch {
            // The alert is the safer mistake: a page about a delivery that is settled.
            return false
        }
        guard let stored, stored.ackEvent != nil else { return false }
        if stored.status == .acknowledged, delivery.escalated {
            alert(Self.delivered(delivery, attempts: attempts, at: now))
        }
        logger.info(
            "a failing attempt's alert is not sent: the other system settled the delivery meanwhile",
            metadata: [
                "belay.delivery.id": "\(delivery.id)",
                "belay.upstream": "\(delivery.upstream)",
                "belay.delivery.status": "\(stored.status.rawValue)",
            ]
        )
        return true
    }

    /// The resolve of a delivery's "still trying" alert: it got through after all.
    static func delivered(_ delivery: Delivery, attempts: Int, at now: Date) -> Alert {
        Alert(
            kind: .delivered,
            severity: AlertSeverity.info.rawValue,
            summary: "\(delivery.upstream) delivery \(delivery.id) was delivered after \(attempts) attempts since "
                + "\(delivery.createdAt.iso8601)",
            upstream: delivery.upstream,
            subject: delivery.id,
            since: delivery.createdAt,
            attempts: attempts,
            link: "/v1/deliveries/\(delivery.id)",
            at: now,
            resolves: .stillTrying
        )
    }

    /// The alert for a webhook event whose forward is dead: it names the event (the forward's
    /// idempotency key) and how to replay it.
    static func webhookDead(
        _ delivery: Delivery,
        source: String,
        attempts: Int,
        decision: DeliveryPlanner.Decision,
        at now: Date
    ) -> Alert {
        let event = WebhookIdentity.event(forwardedBy: delivery)
        return Alert(
            kind: .webhookDead,
            severity: "critical",
            summary: "webhook event \(event) from \(source) could not be forwarded after \(attempts) attempts since "
                + "\(delivery.createdAt.iso8601) (\(decision.summary)); replay it with "
                + "POST /v1/webhooks/events/\(event)/replay",
            upstream: delivery.upstream,
            subject: event,
            since: delivery.createdAt,
            lastError: decision.lastError,
            attempts: attempts,
            link: "/v1/webhooks/events?source=\(source)",
            at: now
        )
    }

    private func sweepKeysIfDue() async {
        let now = wall.now()
        let due = nextSweep.withLock { next -> Bool in
            guard next.map({ $0 <= now }) ?? true else { return false }
            next = now.adding(configuration.sweepEvery)
            return true
        }
        guard due else { return }
        do {
            let forgotten = try await store.forgetKeys(acceptedBefore: now.adding(.zero - configuration.keyRetention))
            if forgotten > 0 {
                logger.debug("forgot expired idempotency keys", metadata: ["belay.count": "\(forgotten)"])
            }
        } catch {
            logger.error("could not forget expired idempotency keys", metadata: ["belay.error": "\(error)"])
        }
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1_000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
