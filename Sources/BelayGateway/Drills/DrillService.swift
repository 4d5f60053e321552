public import Belay
public import BelayHTTP
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// One failure drill as the management API shows it: what is injected into which upstream,
/// who started it, and when it ends (or ended).
public struct DrillRecord: Sendable, Hashable {
    /// Why a drill ended.
    public enum Ending: String, Sendable, Hashable {
        /// Its duration ran out.
        case expired
        /// `DELETE /v1/upstreams/{name}/faults` ended it early.
        case deleted
    }

    /// The fault and its share.
    public var drill: FaultDrill
    /// The upstream drilled.
    public var upstream: String
    /// Who started it: the consumer's name (`anonymous` in open mode).
    public var startedBy: String
    /// When it started.
    public var startedAt: Date
    /// How long it was asked to last.
    public var duration: Duration
    /// When it ends (or was due to).
    public var endsAt: Date
    /// When it ended, once it has.
    public var endedAt: Date?
    /// Why it ended, once it has.
    public var ending: Ending?
    /// Who ended it early, for `deleted`.
    public var endedBy: String?

    /// Whether it is still in force.
    public var active: Bool { endedAt == nil }
}

/// What `POST /v1/upstreams/{name}/faults` asks for, checked field by field.
///
/// ```json
/// {"kind": "error", "ratio": 0.2, "status": 503, "duration": "60s"}
/// {"kind": "latency", "latency": "500ms", "duration": "5m"}
/// {"kind": "error", "ratio": 0.2, "latency": "500ms", "duration": "5m"}
/// {"kind": "outage", "duration": "60s"}
/// ```
public struct DrillRequest: Sendable, Hashable {
    /// A field at fault: its JSON pointer and what is wrong.
    public struct Problem: Error, Sendable, Hashable {
        /// The JSON pointer of the field, e.g. `/duration`.
        public var field: String
        /// What is wrong with it.
        public var detail: String
    }

    /// The longest drill: an hour.
    public static let longest: Duration = .seconds(3_600)

    /// What to inject.
    public var kind: FaultDrill.Kind
    /// The share of attempts, above 0 and at most 1. Default 1.
    public var ratio: Double = 1
    /// The answer's status for `error`, 400–599. Default 503.
    public var status: Int = 503
    /// The wait for `latency`, above 0 and at most a minute; with another kind, added to
    /// every attempt as well (optional).
    public var latency: Duration = .zero
    /// How long the drill lasts, above 0 and at most an hour.
    public var duration: Duration

    /// A JSON number, not `true` or `false` (which Foundation also reads as `NSNumber`, of
    /// Objective-C type `c`, and which `is Bool` cannot tell from 1 and 0).
    private static func jsonNumber(_ value: Any) -> NSNumber? {
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
        return number
    }

    /// Reads and checks a JSON body.
    public static func parse(_ data: Data) -> Result<DrillRequest, Problem> {
        func problem(_ field: String, _ detail: String) -> Result<DrillRequest, Problem> {
            .failure(Problem(field: field, detail: detail))
        }
        guard let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
            let fields = object as? [String: Any]
        else {
            return problem("/", "the body must be a JSON object such as {\"kind\": \"outage\", \"duration\": \"60s\"}")
        }
        let known: Set<String> = ["kind", "ratio", "status", "latency", "duration"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            return problem("/\(unknown)", "is not a drill field (known: \(known.sorted().joined(separator: ", ")))")
        }
        let kinds = FaultDrill.Kind.allCases.map(\.rawValue).joined(separator: ", ")
        guard let kindText = fields["kind"] as? String else {
            return problem("/kind", "is required: one of \(kinds)")
        }
        guard let kind = FaultDrill.Kind(rawValue: kindText) else {
            return problem("/kind", "must be one of \(kinds) (got '\(kindText)')")
        }
        guard let durationText = fields["duration"] as? String else {
            return problem("/duration", "is required: how long the drill lasts, such as \"60s\" (at most 1h)")
        }
        guard let duration = ConfigDuration.parse(durationText), duration > .zero, duration <= longest else {
            return problem(
                "/duration",
                "must be a duration above 0 and at most 1h, such as \"60s\" (got '\(durationText)')"
            )
        }
        var request = DrillRequest(kind: kind, duration: duration)
        if let value = fields["ratio"] {
            guard let number = jsonNumber(value), number.doubleValue > 0, number.doubleValue <= 1
            else { return problem("/ratio", "must be a number above 0 and at most 1, such as 0.2") }
            request.ratio = number.doubleValue
        }
        if let value = fields["status"] {
            guard kind == .error else { return problem("/status", "applies to kind error only") }
            guard let number = jsonNumber(value), let code = Int(exactly: number.doubleValue),
                (400...599).contains(code)
            else { return problem("/status", "must be a whole number from 400 to 599, such as 503") }
            request.status = code
        }
        if let value = fields["latency"] {
            guard let text = value as? String, let latency = ConfigDuration.parse(text), latency > .zero,
                latency <= .seconds(60)
            else { return problem("/latency", "must be a duration above 0 and at most 60s, such as \"500ms\"") }
            request.latency = latency
        } else if kind == .latency {
            return problem(
                "/latency",
                "is required with kind latency: the wait added to each attempt, such as \"500ms\""
            )
        }
        return .success(request)
    }
}

/// Failure drills: starts, ends and lists them per upstream, and ends each when its duration
/// runs out (checked every second on the injected clock, and whenever one is read).
///
/// A drill is put in force on the upstream's ``FaultDrillSwitch``, shared by every client of
/// that upstream. Starting and ending one is logged at `notice` and raised as an `info` alert
/// (`drill.started`, resolved by `drill.ended`), so it reaches the alert sinks and the status
/// page's recent alerts.
public final class DrillService<C: Clock>: Service, Sendable where C.Duration == Duration {
    private struct Entry: Sendable {
        var record: DrillRecord
        var endsAt: C.Instant
    }

    private struct State: Sendable {
        var active: [String: Entry] = [:]
        /// Ended drills, newest last, the last 20 per upstream.
        var ended: [String: [DrillRecord]] = [:]
    }

    /// Why a drill could not start.
    public enum Refusal: Error, Sendable {
        /// No such upstream.
        case unknownUpstream
        /// A drill is already in force on it.
        case running(DrillRecord)
        /// The library's ``FaultInjection`` refused the drill's options (``DrillRequest/parse(_:)``
        /// checks them first, so only a request made in code can meet this).
        case refusedByLibrary(ConfigurationError)
    }

    private let state = Mutex(State())
    private let switches: @Sendable (String) -> FaultDrillSwitch?
    private let wall: WallClock<C>
    private let logger: Logger
    private let alert: @Sendable (Alert) -> Void
    private let newID: @Sendable () -> String

    /// - Parameters:
    ///   - switches: the drill switch of an upstream, nil if there is no such upstream.
    ///   - wall: the time drills are timed on.
    ///   - alert: receives `drill.started` and `drill.ended`.
    ///   - newID: makes a drill's id.
    public init(
        switches: @escaping @Sendable (String) -> FaultDrillSwitch?,
        wall: WallClock<C>,
        logger: Logger,
        alert: @escaping @Sendable (Alert) -> Void = { _ in },
        newID: @escaping @Sendable () -> String = { "drl_" + RandomID.uuidString().lowercased().suffix(12) }
    ) {
        self.switches = switches
        self.wall = wall
        self.logger = logger
        self.alert = alert
        self.newID = newID
    }

    /// Starts `request` on `upstream`, by `consumer`.
    public func start(_ request: DrillRequest, upstream: String, by consumer: String) -> Result<DrillRecord, Refusal> {
        expireDue()
        guard let drills = switches(upstream) else { return .failure(.unknownUpstream) }
        let today = wall.now()
        let drill = FaultDrill(
            id: newID(),
            kind: request.kind,
            ratio: request.ratio,
            status: request.status,
            latency: request.latency
        )
        let record = DrillRecord(
            drill: drill,
            upstream: upstream,
            startedBy: consumer,
            startedAt: today,
            duration: request.duration,
            endsAt: today.addingTimeInterval(request.duration.inSeconds)
        )
        let started = state.withLock { state -> Result<DrillRecord, Refusal> in
            if let running = state.active[upstream] { return .failure(.running(running.record)) }
            do throws(ConfigurationError) {
                try drills.start(drill)
            } catch {
                return .failure(.refusedByLibrary(error))
            }
            state.active[upstream] = Entry(record: record, endsAt: wall.clock.now.advanced(by: request.duration))
            return .success(record)
        }
        if case .success(let record) = started { announce(record, started: true) }
        return started
    }

    /// Ends the drill in force on `upstream` early, by `consumer`; nil if none is.
    public func stop(upstream: String, by consumer: String) -> DrillRecord? {
        expireDue()
        let ended = state.withLock { state -> DrillRecord? in
            guard let entry = state.active.removeValue(forKey: upstream) else { return nil }
            return Self.end(entry.record, .deleted, by: consumer, at: wall.now(), into: &state)
        }
        guard let ended else { return nil }
        switches(upstream)?.stop(ended.drill.id)
        announce(ended, started: false)
        return ended
    }

    /// The drill in force on `upstream`, if any.
    public func current(_ upstream: String) -> DrillRecord? {
        expireDue()
        return state.withLock { $0.active[upstream]?.record }
    }

    /// `upstream`'s drill in force (if any) first, then the ended ones, newest first.
    public func drills(_ upstream: String) -> [DrillRecord] {
        expireDue()
        return state.withLock { state in
            (state.active[upstream].map { [$0.record] } ?? []) + (state.ended[upstream] ?? []).reversed()
        }
    }

    /// Ends every drill whose duration has run out.
    public func expireDue() {
        let now = wall.clock.now
        let today = wall.now()
        let expired = state.withLock { state -> [DrillRecord] in
            let due = state.active.filter { $0.value.endsAt <= now }
            return due.keys.sorted().compactMap { upstream in
                guard let entry = state.active.removeValue(forKey: upstream) else { return nil }
                return Self.end(entry.record, .expired, by: nil, at: today, into: &state)
            }
        }
        for record in expired {
            switches(record.upstream)?.stop(record.drill.id)
            announce(record, started: false)
        }
    }

    private static func end(
        _ record: DrillRecord,
        _ ending: DrillRecord.Ending,
        by consumer: String?,
        at today: Date,
        into state: inout State
    ) -> DrillRecord {
        var record = record
        record.endedAt = ending == .expired ? min(today, record.endsAt) : today
        record.ending = ending
        record.endedBy = consumer
        state.ended[record.upstream, default: []].append(record)
        if (state.ended[record.upstream]?.count ?? 0) > 20 { state.ended[record.upstream]?.removeFirst() }
        return record
    }

    private func announce(_ record: DrillRecord, started: Bool) {
        let words = DrillWords.fault(record.drill)
        let metadata: Logger.Metadata = [
            "belay.upstream": "\(record.upstream)", "belay.drill.id": "\(record.drill.id)",
            "belay.drill.kind": "\(record.drill.kind.rawValue)", "belay.drill.by": "\(record.startedBy)",
        ]
        if started {
            logger.notice("drill started", metadata: metadata)
            alert(
                Alert(
                    kind: .drillStarted,
                    severity: "info",
                    summary: "\(record.upstream): drill \(record.drill.id) started by \(record.startedBy): \(words) "
                        + "for \(HealthWords.span(record.duration)), until \(HealthWords.clockTime(record.endsAt)); "
                        + "alerts it causes are a rehearsal",
                    upstream: record.upstream,
                    subject: record.drill.id,
                    since: record.startedAt,
                    link: "/v1/upstreams/\(record.upstream)/faults",
                    at: record.startedAt
                )
            )
        } else {
            var ended = metadata
            ended["belay.drill.ending"] = "\(record.ending?.rawValue ?? "")"
            logger.notice("drill ended", metadata: ended)
            let how =
                record.ending == .deleted
                ? "ended early by \(record.endedBy ?? "someone")" : "ended: its duration ran out"
            let at = record.endedAt ?? wall.now()
            alert(
                Alert(
                    kind: .drillEnded,
                    severity: "info",
                    summary: "\(record.upstream): drill \(record.drill.id) (\(words)) \(how) after "
                        + HealthWords.span(.seconds(at.timeIntervalSince(record.startedAt))),
                    upstream: record.upstream,
                    subject: record.drill.id,
                    since: record.startedAt,
                    link: "/v1/upstreams/\(record.upstream)/faults",
                    at: at,
                    resolves: .drillStarted
                )
            )
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await self.wall.clock.sleep(for: .seconds(1)) } catch { return }
                self.expireDue()
            }
        }
        // A drill never outlives the gateway's run: whatever is in force ends with it.
        let running = state.withLock { state in state.active.values.map(\.record) }
        for record in running { switches(record.upstream)?.stop(record.drill.id) }
    }
}

/// Words for drills.
enum DrillWords {
    /// `HTTP 503 on 20% of attempts`, `500ms added to every attempt`, `an outage`.
    static func fault(_ drill: FaultDrill) -> String {
        let share = drill.ratio >= 1 ? "every attempt" : "\(HealthWords.percent(drill.ratio)) of attempts"
        let slow =
            drill.kind != .latency && drill.latency > .zero
            ? ", \(drill.latency.formattedForHumans) added to every attempt" : ""
        return fault(drill, share) + slow
    }

    private static func fault(_ drill: FaultDrill, _ share: String) -> String {
        switch drill.kind {
        case .error: return "HTTP \(drill.status) answered to \(share)"
        case .latency: return "\(drill.latency.formattedForHumans) added to \(share)"
        case .reset: return "connection resets on \(share)"
        case .outage:
            return drill.ratio >= 1 ? "a full outage (every attempt fails to connect)" : "connect failures on \(share)"
        }
    }
}

extension Alert.Kind {
    /// A failure drill started on an upstream.
    public static let drillStarted = Alert.Kind(rawValue: "drill.started")
    /// A failure drill ended (resolves `drill.started`).
    public static let drillEnded = Alert.Kind(rawValue: "drill.ended")
}
