import AsyncHTTPClient
import Belay
import BelayAPI
import BelayClient
import BelayGateway
import BelayTestUpstream
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// `belay demo`: the gateway on an example config with simulated upstreams — one healthy,
/// one flaky, one whose primary endpoint is down, one that fails halfway and is served
/// from cache — traffic through the proxy, and a plain summary of what Belay did.
public struct GatewayDemo: Sendable {
    /// Where each line of output goes.
    public let print: @Sendable (String) -> Void
    /// Requests sent to each upstream.
    public let requestsPerUpstream: Int

    /// Creates the demo.
    public init(requestsPerUpstream: Int = 40, print: @escaping @Sendable (String) -> Void) {
        self.requestsPerUpstream = requestsPerUpstream
        self.print = print
    }

    private struct Scenario: Sendable {
        var name: String
        var story: String
        var upstreams: [TestUpstream]
        var policy: String
    }

    /// What one upstream saw through the gateway.
    public struct Tally: Sendable, Hashable {
        /// Requests sent.
        public var requests = 0
        /// Answered 2xx (live or stale).
        public var succeeded = 0
        /// Needed more than one attempt.
        public var retried = 0
        /// Answered by an endpoint other than the first.
        public var failedOver = 0
        /// Served from the stale-if-error cache.
        public var stale = 0
        /// Refused at once because the circuit was open.
        public var circuitOpen = 0
        /// Any other failure the application saw.
        public var failed = 0
        /// Failures the upstream itself produced (what the application would have seen without Belay).
        public var upstreamFailures = 0
    }

    /// What the durable delivery part of the demo saw.
    public struct DeliveryTally: Sendable, Hashable {
        /// Deliveries queued (each answered 202 once durable).
        public var queued = 0
        /// Deliveries the warehouse took (`delivered` or, once confirmed, `acknowledged`).
        public var delivered = 0
        /// Deliveries the warehouse confirmed by webhook (`acknowledged`).
        public var acknowledged = 0
        /// Orders whose confirmation was lost, sent again with the same key after `ack.timeout`.
        public var resentUnconfirmed = 0
        /// Confirmations the simulated warehouse sent to the inbox.
        public var confirmations = 0
        /// Attempts made in all.
        public var attempts = 0
        /// Requests the warehouse received.
        public var arrivals = 0
        /// Distinct idempotency keys among them (one per order: one effect each).
        public var distinctKeys = 0
    }

    /// What the demo saw: each proxied upstream's tally and the deliveries'.
    public struct Report: Sendable {
        /// Per proxied upstream.
        public var upstreams: [String: Tally]
        /// The durable deliveries.
        public var deliveries: DeliveryTally
    }

    /// Runs the demo and returns what it saw.
    @discardableResult
    public func run() async throws -> Report {
        var logger = Logger(label: "belay.demo")
        logger.logLevel = .critical
        let healthy = TestUpstream(logger: logger)
        let flaky = TestUpstream(logger: logger)
        let primaryDown = TestUpstream(logger: logger)
        let backup = TestUpstream(logger: logger)
        let rates = TestUpstream(logger: logger)
        flaky.setBehavior(UpstreamBehavior(statuses: [200, 503, 200, 200, 503, 200, 502, 200, 200], repeats: true))
        primaryDown.setBehavior(.down)
        rates.setBehavior(UpstreamBehavior(body: #"{"EUR":1.08,"GBP":0.86}"#))
        let warehouse = TestUpstream(logger: logger)
        // Down for its first 12 calls, then back.
        warehouse.setBehavior(UpstreamBehavior(statuses: Array(repeating: 503, count: 12), status: 201))
        let scenarios = [
            Scenario(name: "catalog", story: "healthy", upstreams: [healthy], policy: ""),
            Scenario(
                name: "payments",
                story: "flaky: 1 call in 3 answers 502/503",
                upstreams: [flaky],
                policy: "retry: { max_attempts: 3, base: 20ms, cap: 200ms }"
            ),
            Scenario(
                name: "shipping",
                story: "primary endpoint down, backup healthy",
                upstreams: [primaryDown, backup],
                policy: "retry: { base: 10ms, cap: 100ms }"
            ),
            Scenario(
                name: "rates",
                story: "cached; goes down halfway through",
                upstreams: [rates],
                policy: """
                    retry: { max_attempts: 2, base: 10ms, cap: 50ms }
                    circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 4, window: 30s, break: 30s }
                    cache: { stale_if_error: 10m }
                    """
            ),
        ]
        let events = DemoEventCounter()
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let report = try await drive(
                scenarios,
                rates: rates,
                warehouse: warehouse,
                client: client,
                events: events,
                logger: logger
            )
            try await client.shutdown()
            return report
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func drive(
        _ scenarios: [Scenario],
        rates: TestUpstream,
        warehouse: TestUpstream,
        client: HTTPClient,
        events: DemoEventCounter,
        logger: Logger
    ) async throws -> Report {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for upstream in scenarios.flatMap(\.upstreams) + [warehouse] {
                group.addTask { try await upstream.run() }
            }
            var yaml = "server: { listen: \"127.0.0.1:0\" }\nupstreams:\n"
            for scenario in scenarios {
                var endpoints: [String] = []
                for upstream in scenario.upstreams { endpoints.append("\"\(await upstream.baseURL())\"") }
                yaml += "  \(scenario.name):\n    endpoints: [\(endpoints.joined(separator: ", "))]\n"
                for line in scenario.policy.split(separator: "\n") { yaml += "    \(line)\n" }
            }
            // The queue's upstream: one call per attempt, and a demo-speed schedule (the
            // default is 0s, 5s, 5m, 20m, 4h, 1d).
            yaml += """
                  warehouse:
                    endpoints: ["\(await warehouse.baseURL())"]
                    retry: { max_attempts: 1 }
                    circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 6, window: 10s, break: 300ms }
                    idempotency: { header: "Idempotency-Key" }
                    degrade: { writes: queue }
                    ack: { webhook: warehouse-events, match: /order, timeout: 1s }
                deliveries: { schedule: [0s, 200ms, 400ms, 800ms, 1s, 2s], notify_after: 3 }
                webhooks:
                  warehouse-events:
                    verify: { scheme: standard-webhooks, secret: "\(Self.warehouseSecret.value)" }

                """
            var config = try ConfigLoader(environment: [:]).load(yaml: yaml)
            // The demo's queue lives in a throwaway folder, removed at the end.
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "belay-demo-\(UUID().uuidString)"
            )
            defer { try? FileManager.default.removeItem(at: folder) }
            config.storage = .sqlite(path: folder.appendingPathComponent("belay.db").path)
            // No load balancer to tell: the demo stops at once when it is done.
            config.server.drain = .zero
            let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
            let app = try await buildApplication(config: config, logger: logger, eventSink: events) { port in
                portContinuation.yield(port)
            }
            // Stopped gracefully at the end, so deliveries in flight finish cleanly.
            let gateway = ServiceGroup(
                configuration: .init(services: [.init(service: app)], gracefulShutdownSignals: [], logger: logger)
            )
            group.addTask { try await gateway.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            defer { group.cancelAll() }

            print("Belay demo: the gateway listens on 127.0.0.1:\(port) in front of 5 simulated upstreams")
            for scenario in scenarios {
                print("  \(scenario.name.padded(10)) \(scenario.story)")
            }
            print("  \("warehouse".padded(10)) takes orders through the durable queue; down for its first 12 calls;")
            print("  \("".padded(10)) confirms each order by webhook a moment after taking it")
            print("")
            print(
                "Sending \(requestsPerUpstream) requests to each, as an application would: GET http://127.0.0.1:\(port)/proxy/<upstream>/…"
            )
            var tallies: [String: Tally] = [:]
            var retriedRequest: String?
            for scenario in scenarios {
                var tally = Tally()
                let firstEndpoint = await scenario.upstreams[0].port()
                for index in 0..<requestsPerUpstream {
                    if scenario.name == "rates" && index == requestsPerUpstream / 2 {
                        rates.setBehavior(.always(503))
                        print("  … rates goes down now")
                    }
                    let request = HTTPClientRequest(
                        url: "http://127.0.0.1:\(port)/proxy/\(scenario.name)/v1/items/\(index % 5)"
                    )
                    let response = try await client.execute(request, timeout: .seconds(30))
                    let body = try await response.body.collect(upTo: 1 << 20)
                    _ = body
                    tally.requests += 1
                    let attempts = Int(response.headers.first(name: "Belay-Attempts") ?? "1") ?? 1
                    if attempts > 1 {
                        tally.retried += 1
                        if retriedRequest == nil, scenario.name == "payments" {
                            retriedRequest = response.headers.first(name: "Belay-Request-Id")
                        }
                    }
                    if let endpoint = response.headers.first(name: "Belay-Endpoint"),
                        !endpoint.hasSuffix(":\(firstEndpoint)")
                    {
                        tally.failedOver += 1
                    }
                    if response.headers.first(name: "Belay-Degraded") != nil { tally.stale += 1 }
                    if (200..<300).contains(Int(response.status.code)) {
                        tally.succeeded += 1
                    } else if String(buffer: body).contains("\"circuit-open\"") {
                        tally.circuitOpen += 1
                    } else {
                        tally.failed += 1
                    }
                }
                tally.upstreamFailures =
                    scenario.upstreams.flatMap(\.requests).filter { !(200..<300).contains($0.status) }.count
                tallies[scenario.name] = tally
            }
            report(tallies, scenarios: scenarios.map(\.name), events: events)
            try await showWork(port: port, requestID: retriedRequest)
            let deliveries = try await queueOrders(port: port, warehouse: warehouse, client: client)
            await gateway.triggerGracefulShutdown()
            return Report(upstreams: tallies, deliveries: deliveries)
        }
    }

    /// The secret the simulated warehouse signs its confirmations with (Standard Webhooks), new
    /// for each run.
    static let warehouseSecret: Secret = {
        let bytes = (0..<24).map { _ in UInt8.random(in: 0...255) }
        return Secret("whsec_" + Data(bytes).base64EncodedString())
    }()

    /// The order whose first confirmation the simulated warehouse loses.
    static let unconfirmedOrder = "order-7"

    /// The simulated warehouse's webhooks: a signed `order.received` event to Belay's inbox a
    /// moment after each order it took (a 2xx), carrying the order's idempotency key; the first
    /// confirmation of ``unconfirmedOrder`` is lost, so Belay sends that order again after
    /// `ack.timeout` and the warehouse confirms the second delivery. Runs until cancelled, and
    /// returns how many confirmations the inbox took.
    private func confirmOrders(port: Int, warehouse: TestUpstream, client: HTTPClient) async -> Int {
        guard let signer = StandardWebhooksSigner(secret: Self.warehouseSecret) else { return 0 }
        var sent = 0
        var handled = 0
        var taken: [String: Int] = [:]
        while !Task.isCancelled {
            let requests = warehouse.requests
            for arrival in requests.dropFirst(handled) where (200..<300).contains(arrival.status) {
                guard let key = arrival.headers["idempotency-key"] else { continue }
                taken[key, default: 0] += 1
                if key == Self.unconfirmedOrder && taken[key] == 1 { continue }
                let body = #"{"type":"order.received","order":"\#(key)"}"#
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/webhooks/warehouse-events")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                for field in signer.sign(id: "msg_\(key)_\(taken[key] ?? 1)", timestamp: Date(), body: Data(body.utf8))
                {
                    request.headers.add(name: field.name.rawName, value: field.value)
                }
                request.body = .bytes(ByteBuffer(string: body))
                if let response = try? await client.execute(request, timeout: .seconds(10)) {
                    _ = try? await response.body.collect(upTo: 1 << 16)
                    if response.status == .ok { sent += 1 }
                }
            }
            handled = requests.count
            try? await Task.sleep(for: .milliseconds(50))
        }
        return sent
    }

    /// Queues orders for the warehouse through `POST /v1/deliveries` and waits until the
    /// queue has delivered them all and the warehouse has confirmed each (bounded), then says
    /// what happened.
    private func queueOrders(port: Int, warehouse: TestUpstream, client: HTTPClient) async throws -> DeliveryTally {
        let confirmer = Task { await confirmOrders(port: port, warehouse: warehouse, client: client) }
        defer { confirmer.cancel() }
        let orders = 10
        let base = "http://127.0.0.1:\(port)"
        print("")
        print("Queueing \(orders) orders for the warehouse: POST \(base)/v1/deliveries, one Idempotency-Key each")
        var tally = DeliveryTally()
        var ids: [String] = []
        for order in 1...orders {
            var request = HTTPClientRequest(url: "\(base)/v1/deliveries")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "Idempotency-Key", value: "order-\(order)")
            request.body = .bytes(
                ByteBuffer(
                    string: #"{"upstream":"warehouse","method":"POST","path":"/v1/orders","body":{"order":\#(order)}}"#
                )
            )
            let response = try await client.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 16)
            if response.status == .accepted,
                let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
                let id = object["id"] as? String
            {
                ids.append(id)
                tally.queued += 1
            }
        }
        print("  \(tally.queued) answered 202 Accepted, each only once it was on disk")
        // One more, written straight to the warehouse through the proxy while it is down: the
        // caller accepts a later answer (Prefer: respond-async), so the failed write is queued.
        var write = HTTPClientRequest(url: "\(base)/proxy/warehouse/v1/orders")
        write.method = .POST
        write.headers.add(name: "Content-Type", value: "application/json")
        write.headers.add(name: "Idempotency-Key", value: "order-\(orders + 1)")
        write.headers.add(name: "Prefer", value: "respond-async")
        write.body = .bytes(ByteBuffer(string: #"{"order":\#(orders + 1)}"#))
        let written = try await client.execute(write, timeout: .seconds(30))
        let writtenBody = try await written.body.collect(upTo: 1 << 16)
        if written.status == .accepted, let location = written.headers.first(name: "Location") {
            let id = String(location.split(separator: "/").last ?? "")
            ids.append(id)
            tally.queued += 1
            let why =
                (try? JSONSerialization.jsonObject(with: Data(writtenBody.readableBytesView)) as? [String: Any])?[
                    "queued_because"
                ] as? String ?? ""
            print(
                "  and POST /proxy/warehouse/v1/orders with Prefer: respond-async while the warehouse is down: "
                    + "202, Belay-Degraded: \(written.headers.first(name: "Belay-Degraded") ?? "") as \(id) (\(why))"
            )
        } else {
            print("  and POST /proxy/warehouse/v1/orders with Prefer: respond-async: HTTP \(written.status.code)")
        }
        var page = DeliveryPage(deliveries: [], nextCursor: nil)
        for _ in 0..<300 {
            let response = try await client.execute(
                HTTPClientRequest(url: "\(base)/v1/deliveries?upstream=warehouse"),
                timeout: .seconds(30)
            )
            let body = try await response.body.collect(upTo: 1 << 20)
            if let read = try? ManagementJSON.decoder().decode(DeliveryPage.self, from: Data(body.readableBytesView)) {
                page = read
            }
            let statuses = page.deliveries.map(\.status)
            tally.acknowledged = statuses.filter { $0 == "acknowledged" }.count
            tally.delivered = tally.acknowledged + statuses.filter { $0 == "delivered" }.count
            tally.attempts = page.deliveries.map(\.attemptCount).reduce(0, +)
            if tally.acknowledged == ids.count { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        confirmer.cancel()
        tally.confirmations = await confirmer.value
        let arrivals = warehouse.requests
        tally.arrivals = arrivals.count
        tally.distinctKeys = Set(arrivals.compactMap { $0.headers["idempotency-key"] }).count
        let taken = arrivals.filter { (200..<300).contains($0.status) }.compactMap { $0.headers["idempotency-key"] }
        tally.resentUnconfirmed = Set(taken.filter { key in taken.filter { $0 == key }.count > 1 }).count
        print("")
        print(DeliveryTable.list(page))
        let unconfirmed = page.deliveries.first { $0.idempotencyKey == Self.unconfirmedOrder }
        if let id = unconfirmed?.id {
            let response = try await client.execute(
                HTTPClientRequest(url: "\(base)/v1/deliveries/\(id)"),
                timeout: .seconds(30)
            )
            let body = try await response.body.collect(upTo: 1 << 20)
            if let delivery = try? ManagementJSON.decoder().decode(
                DeliveryDetail.self,
                from: Data(body.readableBytesView)
            ) {
                print("")
                print(
                    "\(Self.unconfirmedOrder), whose first confirmation the warehouse lost: sent again with the same key "
                        + "after ack.timeout (1s), then confirmed (GET /v1/deliveries/\(id)):"
                )
                print(DeliveryTable.show(delivery).split(separator: "\n").map { "  \($0)" }.joined(separator: "\n"))
            }
        }
        print("")
        print(
            "Deliveries: \(tally.queued) queued, \(tally.delivered) delivered after \(tally.attempts) attempts, "
                + "\(tally.acknowledged) confirmed by the warehouse's \(tally.confirmations) webhooks "
                + "(\(tally.resentUnconfirmed) resent when its confirmation did not come); the warehouse received "
                + "\(tally.arrivals) requests carrying \(tally.distinctKeys) distinct idempotency keys: one order each."
        )
        return tally
    }

    /// What an operator sees afterwards: one retried call's audit trail, each upstream's
    /// health, and a few of the Prometheus series.
    private func showWork(port: Int, requestID: String?) async throws {
        let management = ManagementClient(baseURL: "http://127.0.0.1:\(port)", apiKey: nil)
        if let requestID {
            let trail = try await management.get("/v1/requests/\(requestID)").decode(AuditRequestView.self)
            print("")
            print("Show your work: the audit trail of one retried payments call (GET /v1/requests/\(requestID)):")
            print(
                "  \(trail.method) \(trail.path) → \(trail.status) in \(trail.durationMs) ms, outcome \(trail.outcome)"
            )
            for attempt in trail.attempts {
                let result = attempt.status.map { "HTTP \($0)" } ?? attempt.failure ?? ""
                print("  attempt \(attempt.number) to \(attempt.endpoint): \(result) after \(attempt.durationMs) ms")
            }
            for decision in trail.decisions {
                print("  decision: \(decision.description)")
            }
        }
        print("")
        print("Each upstream's health, as GET /v1/upstreams, `belay upstreams list` and the status page at / show it:")
        let health = UpstreamTable.list(try await management.get("/v1/upstreams").decode(UpstreamList.self))
        print(health.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n"))
        let scrape = String(decoding: try await management.get("/metrics").body, as: UTF8.self)
        let series = scrape.split(separator: "\n").filter {
            $0.hasPrefix("belay_proxy_requests_total{") && !$0.hasSuffix(" 0")
        }
        print("")
        print("Prometheus metrics at GET /metrics, e.g. requests by outcome (those not 0):")
        for line in series.sorted() { print("  \(line)") }
    }

    private func report(_ tallies: [String: Tally], scenarios: [String], events: DemoEventCounter) {
        print("")
        print("upstream    requests  ok   retried  failed over  served stale  circuit-open  failed")
        for name in scenarios {
            guard let tally = tallies[name] else { continue }
            print(
                "\(name.padded(11)) \(String(tally.requests).padded(9)) \(String(tally.succeeded).padded(4)) "
                    + "\(String(tally.retried).padded(8)) \(String(tally.failedOver).padded(12)) "
                    + "\(String(tally.stale).padded(13)) \(String(tally.circuitOpen).padded(13)) \(tally.failed)"
            )
        }
        let all = tallies.values
        let requests = all.map(\.requests).reduce(0, +)
        let succeeded = all.map(\.succeeded).reduce(0, +)
        let upstreamFailures = all.map(\.upstreamFailures).reduce(0, +)
        print("")
        print("Decisions Belay took:")
        print("  retries scheduled       \(events.count("retry_scheduled"))")
        print(
            "  breaker transitions     \(events.transitions.isEmpty ? "none" : events.transitions.joined(separator: ", "))"
        )
        print("  calls refused by the open breaker without touching the upstream: \(events.count("rejected"))")
        print("")
        print(
            "Summary: \(requests) requests, \(succeeded) succeeded (\(all.map(\.stale).reduce(0, +)) served stale from cache), "
                + "\(all.map(\.retried).reduce(0, +)) needed retries, \(all.map(\.failedOver).reduce(0, +)) failed over. "
                + "The upstreams failed \(upstreamFailures) times; the application saw \(requests - succeeded) failures."
        )
    }
}

/// Counts resilience decisions for the demo's summary.
private final class DemoEventCounter: ResilienceEventSink {
    private let state = Mutex<(counts: [String: Int], transitions: [String])>(([:], []))

    func receive(_ event: ResilienceEvent) {
        state.withLock { state in
            state.counts[event.kind.name, default: 0] += 1
            if case .circuitStateChanged(let from, let to) = event.kind {
                state.transitions.append("\(event.strategy): \(from) → \(to)")
            }
        }
    }

    func count(_ name: String) -> Int { state.withLock { $0.counts[name] ?? 0 } }
    var transitions: [String] { state.withLock { $0.transitions } }
}

extension String {
    fileprivate func padded(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
