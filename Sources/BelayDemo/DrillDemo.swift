import AsyncHTTPClient
public import BelayAPI
public import BelayClient
import BelayGateway
import BelayStore
import BelayTestUpstream
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// `belay demo --drill`: a failure drill from start to postmortem, offline. The gateway runs in
/// front of the demo's healthy `catalog` upstream (with a cache, a breaker and retries) while an
/// application calls it 20 times a second; `belay drill catalog --outage 5s` runs against it
/// and reports; Belay opens an incident, notes the recovery, closes it `close_after` later, and
/// the demo prints the incident's postmortem draft, as `belay incidents show ID --format
/// markdown` would.
public struct DrillDemo: Sendable {
    /// Where each line of output goes.
    public let print: @Sendable (String) -> Void
    /// How long the outage lasts. Default 5 seconds.
    public let outage: Duration
    /// How long the upstream must stay healthy before its incident closes. Default 5 seconds
    /// (a gateway's default is 5 minutes).
    public let closeAfter: Duration

    /// What the demo saw: the drill's report and the incident, closed (or as it stood when the
    /// demo stopped waiting).
    public struct Outcome: Sendable {
        /// `belay drill`'s report.
        public var report: DrillReport
        /// The incident the drill caused, if one was found.
        public var incident: IncidentJSON?
        /// Calls the application made, and how many it saw fail (not 2xx).
        public var calls: Int
        /// Calls that were not answered 2xx.
        public var failed: Int
    }

    /// Creates the demo.
    public init(
        outage: Duration = .seconds(5),
        closeAfter: Duration = .seconds(5),
        print: @escaping @Sendable (String) -> Void
    ) {
        self.outage = outage
        self.closeAfter = closeAfter
        self.print = print
    }

    /// Runs the drill and returns what it saw.
    @discardableResult
    public func run() async throws -> Outcome {
        var logger = Logger(label: "belay.demo")
        logger.logLevel = .critical
        let catalog = TestUpstream(logger: logger)
        catalog.setBehavior(UpstreamBehavior(body: #"{"items":["rope","harness","belay device"]}"#))
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let outcome = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await catalog.run() }
                defer { group.cancelAll() }
                return try await drive(catalog: catalog, client: client, logger: logger, group: &group)
            }
            try await client.shutdown()
            return outcome
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func drive(
        catalog: TestUpstream,
        client: HTTPClient,
        logger: Logger,
        group: inout ThrowingTaskGroup<Void, any Error>
    ) async throws -> Outcome {
        let yaml = """
            server: { listen: "127.0.0.1:0", drain: 0s }
            upstreams:
              catalog:
                endpoints: ["\(await catalog.baseURL())"]
                retry: { max_attempts: 2, base: 10ms, cap: 50ms }
                circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 4, window: 10s, break: 1s }
                cache: { stale_if_error: 10m }
            incidents: { close_after: \(ConfigDuration.format(closeAfter)) }

            """
        var config = try ConfigLoader(environment: [:]).load(yaml: yaml)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-drill-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        config.storage = .sqlite(path: folder.appendingPathComponent("belay.db").path)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = try await buildApplication(config: config, logger: logger) { portContinuation.yield($0) }
        let gateway = ServiceGroup(
            configuration: .init(services: [.init(service: app)], gracefulShutdownSignals: [], logger: logger)
        )
        group.addTask { try await gateway.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        let base = "http://127.0.0.1:\(port)"

        print("Belay drill demo: the gateway listens on 127.0.0.1:\(port) in front of catalog, a healthy upstream")
        print(
            "  with retries, a breaker (break 1s) and a stale-if-error cache; an application calls it 20 times a second."
        )
        print(
            "  Incidents close after \(HealthWords.span(closeAfter)) healthy here (incidents.close_after; 5 minutes by default)."
        )
        print("")
        // Fill the cache first: each of the application's five paths answered once, live.
        for index in 0..<5 {
            let request = HTTPClientRequest(url: "\(base)/proxy/catalog/v1/items/\(index)")
            let response = try await client.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
        }
        // The application: a call every 50 ms, counted, until the demo is done.
        let calls = Mutex((made: 0, failed: 0))
        let application = Task {
            var index = 0
            while !Task.isCancelled {
                let request = HTTPClientRequest(url: "\(base)/proxy/catalog/v1/items/\(index % 5)")
                index += 1
                let ok: Bool
                if let response = try? await client.execute(request, timeout: .seconds(10)) {
                    _ = try? await response.body.collect(upTo: 1 << 20)
                    ok = (200..<300).contains(Int(response.status.code))
                } else {
                    ok = false
                }
                calls.withLock {
                    $0.made += 1
                    if !ok { $0.failed += 1 }
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        defer { application.cancel() }
        // A second of normal traffic before the outage.
        try await Task.sleep(for: .seconds(1))

        let seconds = Int(outage.components.seconds)
        print("$ belay drill catalog --outage \(seconds)s")
        let body = try DrillRun<ContinuousClock>.request(
            outage: "\(seconds)s",
            errors: nil,
            resets: nil,
            latency: nil,
            status: nil,
            duration: nil
        ).get()
        let management = ManagementClient(baseURL: base, apiKey: nil)
        let run = DrillRun(
            upstream: "catalog",
            request: body,
            recovery: .seconds(90),
            every: .milliseconds(250),
            client: management,
            clock: ContinuousClock(),
            progress: { print("  " + $0) }
        )
        let report = try await run.run()
        print("")
        print(
            report.render().split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(
                separator: "\n"
            )
        )

        print("")
        print("Waiting for Belay to close the incident (\(HealthWords.span(closeAfter)) healthy)…")
        var incident: IncidentJSON?
        for _ in 0..<Self.closeChecks(closeAfter) {
            if let answer = try? await management.get("/v1/incidents?upstream=catalog&limit=1"), answer.status == 200,
                let page = try? ManagementJSON.decoder().decode(IncidentListJSON.self, from: answer.body)
            {
                incident = page.incidents.first
                if incident?.status == "closed" { break }
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        application.cancel()
        let seen = calls.withLock { $0 }
        guard let incident else {
            print("  no incident was opened: the drill caused none")
            await gateway.triggerGracefulShutdown()
            return Outcome(report: report, incident: nil, calls: seen.made, failed: seen.failed)
        }
        print(
            "  \(incident.id) is \(incident.status); the application made \(seen.made) calls, \(seen.failed) of them failed"
        )
        print("")
        print("$ belay incidents show \(incident.id) --format markdown")
        print("")
        print(Postmortem.markdown(incident))
        await gateway.triggerGracefulShutdown()
        return Outcome(report: report, incident: incident, calls: seen.made, failed: seen.failed)
    }

    /// Half-second checks for the close: close_after, the tracker's 5-second evaluation, and a
    /// margin of 30 s.
    static func closeChecks(_ closeAfter: Duration) -> Int {
        Int(closeAfter.components.seconds) * 2 + 70
    }
}
