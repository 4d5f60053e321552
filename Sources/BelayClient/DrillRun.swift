import Belay
import BelayAPI
public import Foundation

/// Runs a failure drill against a running gateway and watches it to the end (`belay drill`):
/// starts it with `POST /v1/upstreams/{name}/faults`, reads the upstream and the recent alerts
/// every `every` while it runs and until the upstream has recovered (at most `recovery` after
/// the drill ended), then counts the callers' answers from the audit trail.
///
/// Cancelled (Ctrl-C), it ends the drill early with `DELETE` and reports what it saw.
public struct DrillRun<C: Clock>: Sendable where C.Duration == Duration {
    /// Why a drill could not be run.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// What went wrong, in words.
        public var description: String
    }

    /// The upstream to drill.
    public var upstream: String
    /// The drill, as `POST …/faults` takes it (``DrillRequest``).
    public var request: Data
    /// How long to wait for the upstream to recover after the drill ended.
    public var recovery: Duration
    /// How often to look.
    public var every: Duration
    let client: ManagementClient
    let clock: C
    let wall: @Sendable () -> Date
    let progress: @Sendable (String) -> Void

    /// - Parameters:
    ///   - wall: the date now (the gateway's dates are compared with it).
    ///   - progress: receives a line for each thing seen as it happens.
    public init(
        upstream: String,
        request: Data,
        recovery: Duration = .seconds(120),
        every: Duration = .seconds(1),
        client: ManagementClient,
        clock: C,
        wall: @escaping @Sendable () -> Date = { Date() },
        progress: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.upstream = upstream
        self.request = request
        self.recovery = recovery
        self.every = every
        self.client = client
        self.clock = clock
        self.wall = wall
        self.progress = progress
    }

    /// The upstream's name as a path segment.
    private var name: String { ManagementClient.escaped(upstream) }

    /// Runs the drill and returns its report.
    public func run() async throws(Failure) -> DrillReport {
        let started = try await call { try await $0.post("/v1/upstreams/\(name)/faults", json: request) }
        let drill: DrillView
        do {
            drill = try started.decode(DrillView.self)
        } catch {
            throw Failure(
                description: "the gateway's answer to POST …/faults is not a drill as this belay reads it: \(error)"
            )
        }
        var report = DrillReport(drill: drill)
        progress(
            "drill \(report.drillID) started on \(upstream): \(report.fault), until \(ManagementJSON.format(report.endsAt))"
        )
        var deadline: C.Instant?
        while !report.settled {
            do {
                try await clock.sleep(for: every)
            } catch {
                break
            }
            if Task.isCancelled { break }
            await look(&report)
            if report.endedAt != nil, deadline == nil { deadline = clock.now.advanced(by: recovery) }
            if let deadline, clock.now >= deadline {
                progress("gave up waiting for \(upstream) to recover after \(recovery.formattedForHumans)")
                break
            }
        }
        guard Task.isCancelled else {
            await countRequests(into: &report)
            return report
        }
        // Cancelled (Ctrl-C): end the drill and report, in a task of its own, since every call
        // made from this cancelled one would be cancelled too.
        let finished = report
        return await Task.detached { await self.endEarly(finished) }.value
    }

    /// Ends the drill early (if it still runs), takes a last look, and counts the answers.
    private func endEarly(_ report: DrillReport) async -> DrillReport {
        var report = report
        if report.endedAt == nil {
            if let answer = try? await client.delete("/v1/upstreams/\(name)/faults"), answer.status == 200 {
                let ended = (try? answer.decode(DrillView.self))?.endedAt ?? wall()
                report.endedEarly(at: ended)
                progress("cancelled: drill \(report.drillID) ended early")
            } else {
                progress(
                    "cancelled: drill \(report.drillID) could not be ended early; it ends by itself at \(ManagementJSON.format(report.endsAt))"
                )
            }
        }
        await look(&report)
        await countRequests(into: &report)
        return report
    }

    /// Reads the upstream and the recent alerts once. A read that fails is skipped: the
    /// gateway may be restarting or slow, and the drill ends by itself on the gateway's side
    /// whatever happens here.
    private func look(_ report: inout DrillReport) async {
        if let answer = try? await client.get("/v1/upstreams/\(name)"), answer.status == 200,
            let detail = try? answer.decode(UpstreamDetail.self)
        {
            for event in report.observe(upstream: detail.upstream, at: wall()) { show(event, report) }
        }
        if let answer = try? await client.get("/v1/status"), answer.status == 200,
            let status = try? answer.decode(StatusView.self)
        {
            for event in report.observe(alerts: status.alerts) { show(event, report) }
        }
    }

    private func show(_ event: DrillReport.Event, _ report: DrillReport) {
        progress("\(report.offset(event.at))  \(event.text)")
    }

    /// Pages the audit trail of the upstream since the drill started (at most 20 pages of 500).
    private func countRequests(into report: inout DrillReport) async {
        var cursor: String?
        for _ in 0..<20 {
            let path = ManagementClient.path(
                "/v1/requests",
                [
                    ("upstream", upstream), ("since", ManagementJSON.format(report.startedAt)), ("limit", "500"),
                    ("cursor", cursor),
                ]
            )
            guard let answer = try? await client.get(path), answer.status == 200,
                let page = try? answer.decode(AuditRequestPage.self)
            else {
                report.outcomesIncomplete()
                return
            }
            report.count(requests: page.requests)
            guard let next = page.nextCursor else { return }
            cursor = next
        }
        report.outcomesIncomplete()
    }

    private func call(
        _ body: (ManagementClient) async throws -> ManagementClient.Answer
    ) async throws(Failure)
        -> ManagementClient.Answer
    {
        let answer: ManagementClient.Answer
        do {
            answer = try await body(client)
        } catch {
            throw Failure(description: "cannot reach the gateway at \(client.baseURL): \(error)")
        }
        guard (200..<300).contains(answer.status) else { throw Failure(description: answer.problemSummary) }
        return answer
    }
}

extension DrillRun {
    /// The body of `POST …/faults` from `belay drill`'s options: `--outage 60s`, or
    /// `--errors 20%` / `--resets 5%` (a share as `20%` or `0.2`) with `--status`, or
    /// `--latency 500ms` alone or added to errors or resets; `--duration` for all but
    /// `--outage`, whose value is its duration. Fails with a sentence naming the option.
    public static func request(
        outage: String?,
        errors: String?,
        resets: String?,
        latency: String?,
        status: Int?,
        duration: String?
    ) -> Result<Data, Failure> {
        func fail(_ text: String) -> Result<Data, Failure> { .failure(Failure(description: text)) }
        func share(_ text: String, _ option: String) -> Double? {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            let value =
                trimmed.hasSuffix("%") ? Double(trimmed.dropLast()).map { $0 / 100 } : Double(trimmed)
            guard let value, value > 0, value <= 1 else { return nil }
            return value
        }
        let chosen = [outage.map { _ in "--outage" }, errors.map { _ in "--errors" }, resets.map { _ in "--resets" }]
            .compactMap { $0 }
        guard chosen.count <= 1 else {
            return fail("\(chosen.joined(separator: " and ")) cannot be combined: a drill injects one kind of failure")
        }
        var body: [String: Any] = [:]
        if let outage {
            guard duration == nil else { return fail("--outage takes the drill's duration itself; drop --duration") }
            guard latency == nil else { return fail("--latency cannot be added to --outage: nothing is sent") }
            body = ["kind": "outage", "duration": outage]
        } else if let errors {
            guard let ratio = share(errors, "--errors") else {
                return fail("--errors must be a share above 0 and at most 100%, such as 20% (got '\(errors)')")
            }
            body = ["kind": "error", "ratio": ratio]
            if let status { body["status"] = status }
        } else if let resets {
            guard let ratio = share(resets, "--resets") else {
                return fail("--resets must be a share above 0 and at most 100%, such as 5% (got '\(resets)')")
            }
            body = ["kind": "reset", "ratio": ratio]
        } else if latency != nil {
            body = ["kind": "latency"]
        } else {
            return fail("say what to inject: --outage 60s, --errors 20%, --resets 5% or --latency 500ms")
        }
        if status != nil, body["kind"] as? String != "error" { return fail("--status applies to --errors only") }
        if let latency { body["latency"] = latency }
        if outage == nil { body["duration"] = duration ?? "60s" }
        // The gateway checks every value and names the field at fault.
        guard let data = try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]) else {
            return fail("cannot encode the drill")
        }
        return .success(data)
    }
}
