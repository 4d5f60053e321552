import AsyncHTTPClient
import BelayTestUpstream
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PostgresNIO
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The PostgreSQL server tests may use, from postgres-nio's variables (`eval
/// "$(scripts/pg-cluster.sh start)"` sets them).
struct PostgresTestServer: Sendable {
    let host: String
    let port: Int
    let user: String
    let password: String
    let database: String

    /// The server the variables name; nil when they are not set.
    static let configured: PostgresTestServer? = {
        let environment = ProcessInfo.processInfo.environment
        guard let host = environment["POSTGRES_HOSTNAME"], let user = environment["POSTGRES_USER"],
            let password = environment["POSTGRES_PASSWORD"], let database = environment["POSTGRES_DB"]
        else { return nil }
        let port = environment["POSTGRES_PORT"].flatMap { Int($0) } ?? 5432
        return PostgresTestServer(host: host, port: port, user: user, password: password, database: database)
    }()

    /// A `storage.url` whose tables are in `schema` and whose connections are named `application`.
    func url(schema: String, application: String, poolSize: Int) -> String {
        func encoded(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
        }
        return "postgres://\(encoded(user)):\(encoded(password))@\(host):\(port)/\(encoded(database))"
            + "?sslmode=disable&pool_size=\(poolSize)&application_name=\(application)"
            + "&options=-c%20search_path%3D\(schema)"
    }

    /// One connection, for a test's own queries.
    func connect(logger: Logger) async throws -> PostgresConnection {
        let configuration = PostgresConnection.Configuration(
            host: host,
            port: port,
            username: user,
            password: password,
            database: database,
            tls: .disable
        )
        return try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
    }

    /// Runs `body` with the name of a new schema (Belay creates its tables on start) and a
    /// connection, then drops the schema, on failure too.
    func withScratchSchema(_ body: (String, PostgresConnection) async throws -> Void) async throws {
        var logger = Logger(label: "crash-test.postgres")
        logger.logLevel = .critical
        let schema = "belay_crash_\(UUID().uuidString.prefix(8).lowercased())"
        let connection = try await connect(logger: logger)
        let outcome: Result<Void, any Error>
        do {
            try await body(schema, connection)
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        _ = try? await connection.query(
            PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(schema) CASCADE"),
            logger: logger
        )
        try? await connection.close()
        try outcome.get()
    }
}

/// Sends SIGKILL to process `pid`.
private func sigkill(_ pid: Int32) {
    _ = kill(pid, SIGKILL)
}

/// Why a crash test stopped.
struct CrashTestFailure: Error, CustomStringConvertible {
    let description: String
}

/// One `belay serve` process of several sharing a database: its name, port and config,
/// started again on the same port and config after a kill.
final class GatewayInstance: Sendable {
    /// `server.instance`, the prefix of its workers' lease owners.
    let name: String
    /// The `application_name` of its database connections.
    let application: String
    let config: String
    let log: String
    let port: Mutex<Int>
    /// The running process. `Process` is only touched under this lock.
    private let process = Mutex<Process?>(nil)
    private let yaml: @Sendable (Int) -> String

    init(name: String, application: String, folder: URL, yaml: @escaping @Sendable (Int) -> String) {
        self.name = name
        self.application = application
        self.config = folder.appendingPathComponent("\(name).yaml").path
        self.log = folder.appendingPathComponent("\(name).log").path
        self.yaml = yaml
        self.port = Mutex(0)
    }

    /// Writes the config for `port` and starts the binary on it (not waiting until it serves).
    func launch(port: Int) throws {
        try yaml(port).write(toFile: config, atomically: true, encoding: .utf8)
        self.port.withLock { $0 = port }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BelayBinary.path)
        process.arguments = ["serve", "--config", config, "--log-format", "json", "--log-level", "error"]
        process.standardOutput = FileHandle.nullDevice
        let output = FileHandle(forWritingAtPath: log)
        process.standardError = output
        defer { try? output?.close() }  // the child has its own copy
        try process.run()
        self.process.withLock { $0 = process }
    }

    var isRunning: Bool { process.withLock { $0?.isRunning ?? false } }
    var pid: Int32? { process.withLock { $0?.processIdentifier } }

    /// Sends SIGKILL and waits (at most 5 s) until the process is gone, killed by it.
    func kill() async throws {
        guard let pid else { return }
        sigkill(pid)
        let deadline = ContinuousClock.now + .seconds(5)
        while isRunning {
            guard ContinuousClock.now < deadline else {
                throw CrashTestFailure(description: "\(name) outlived SIGKILL")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        guard process.withLock({ $0?.terminationReason == .uncaughtSignal }) else {
            throw CrashTestFailure(description: "\(name) exited before SIGKILL: \(logTail)")
        }
    }

    /// Kills the process if it runs (teardown: nothing of it must outlive the test).
    func stop() {
        process.withLock { process in
            guard let process, process.isRunning else { return }
            sigkill(process.processIdentifier)
            process.waitUntilExit()
        }
    }

    /// Waits until it answers `GET /v1/upstreams` as itself; false if it exited first or
    /// did not answer before `deadline`.
    func waitUntilServing(client: HTTPClient, deadline: ContinuousClock.Instant) async throws -> Bool {
        let port = self.port.withLock { $0 }
        while isRunning, ContinuousClock.now < deadline {
            if let response = try? await client.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/upstreams"),
                timeout: .seconds(1)
            ), response.status == .ok,
                let bytes = try? await response.body.collect(upTo: 1 << 20),
                let object = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any],
                object["instance"] as? String == name
            {
                return isRunning
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// The end of its log (why it did not start).
    var logTail: String {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return String(text.suffix(1_500))
    }
}

/// What the clients of the three-instance run share.
final class SharedLoad: Sendable {
    let next = Mutex(0)
    /// Delivery index → the delivery id its 202 named.
    let accepted = Mutex<[Int: String]>([:])
    /// Deliveries the gateway refused for good (not retryable), with its answer.
    let refused = Mutex<[Int: String]>([:])
    /// Accepts that needed another instance after a failure.
    let retriedElsewhere = Mutex(0)
    /// Accepts answered as a repeat of a delivery stored by an earlier try (`Idempotent-Replayed`).
    let replayed = Mutex(0)
    /// 202s each instance gave.
    let acceptedBy = Mutex([0, 0, 0])
    /// The instance killed.
    let victim = Mutex<Int?>(nil)
    /// The keys of the deliveries the killed instance held in flight when it died.
    let heldAtKill = Mutex<Set<String>>([])

    /// What happened when (printed at the end, to read a run's timings).
    let timeline = Mutex<[String]>([])

    /// Notes `event`, the time since `start` and how many were accepted by then.
    func note(_ event: String, since start: ContinuousClock.Instant) {
        let elapsed = (ContinuousClock.now - start).formatted(
            .units(allowed: [.seconds], fractionalPart: .show(length: 2))
        )
        let count = accepted.withLock { $0.count }
        timeline.withLock { $0.append("\(event) at \(elapsed) (\(count) accepted)") }
    }

    /// The next delivery index to send, or nil when all `total` were taken.
    func take(below total: Int) -> Int? {
        next.withLock { value in
            guard value < total else { return nil }
            defer { value += 1 }
            return value
        }
    }
}

/// What one accept got.
enum AcceptAnswer: Sendable {
    case accepted(id: String, replayed: Bool)
    /// A failure another try may not meet: no connection, a reset, a timeout, 409 or 5xx.
    case retry
    case refused(String)
}

@Suite(.serialized) struct SharedDatabaseCrashTests: Sendable {
    static let total = 900
    static let killAfter = 250
    static let concurrency = 8

    /// Queues delivery `index` with its own key `pgcrash-<index>`.
    func post(_ index: Int, port: Int, client: HTTPClient) async -> AcceptAnswer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/deliveries")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: "pgcrash-\(index)")
        request.body = .bytes(
            ByteBuffer(
                string: #"{"upstream":"sink","method":"POST","path":"/orders/\#(index)","body":{"i":\#(index)}}"#
            )
        )
        // Short: a request caught by the kill may hang on its pooled connection.
        guard let response = try? await client.execute(request, timeout: .seconds(2)) else { return .retry }
        let bytes = try? await response.body.collect(upTo: 1 << 16)
        switch response.status.code {
        case 202:
            guard let bytes,
                let object = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any],
                let id = object["id"] as? String
            else { return .retry }
            return .accepted(id: id, replayed: response.headers.first(name: "Idempotent-Replayed") == "true")
        case 409, 500...:
            return .retry
        default:
            return .refused("\(response.status.code) \(bytes.map { String(buffer: $0) } ?? "")")
        }
    }

    /// Sends delivery `index` until an instance accepts it: first to instance `index % 3`,
    /// and after a failure to the next one, with the same key.
    func accept(
        _ index: Int,
        instances: [GatewayInstance],
        client: HTTPClient,
        load: SharedLoad,
        deadline: ContinuousClock.Instant
    ) async {
        var attempt = 0
        while ContinuousClock.now < deadline {
            let instance = (index + attempt) % instances.count
            let port = instances[instance].port.withLock { $0 }
            switch await post(index, port: port, client: client) {
            case .accepted(let id, let replayed):
                load.accepted.withLock { $0[index] = id }
                load.acceptedBy.withLock { $0[instance] += 1 }
                if attempt > 0 { load.retriedElsewhere.withLock { $0 += 1 } }
                if replayed { load.replayed.withLock { $0 += 1 } }
                return
            case .retry:
                attempt += 1
                // Every instance failed once: give them a moment.
                if attempt % instances.count == 0 { try? await Task.sleep(for: .milliseconds(50)) }
            case .refused(let answer):
                load.refused.withLock { $0[index] = answer }
                return
            }
        }
    }

    @Test(
        .enabled(if: BelayBinary.isFresh, "needs .build/debug/belay built from the current sources: run swift build"),
        .enabled(
            if: PostgresTestServer.configured != nil,
            "needs PostgreSQL: set POSTGRES_HOSTNAME, _PORT, _USER, _PASSWORD, _DB (scripts/pg-cluster.sh start prints them)"
        ),
        .timeLimit(.minutes(1))
    )
    func threeInstancesOnOneDatabaseLoseNothingWhenOneIsKilled() async throws {
        let server = try #require(PostgresTestServer.configured)
        let started = ContinuousClock.now
        // Everything below is bounded by this; the leases of the killed instance expire after
        // 1.5 × the 1 s total timeout + 20 s, so the whole run takes about 23 s.
        let deadline = started + .seconds(50)
        let (total, killAfter, concurrency) = (Self.total, Self.killAfter, Self.concurrency)
        try await server.withScratchSchema { schema, database in
            try await CrashRig.run { rig in
                let (upstream, client) = (rig.upstream, rig.client)
                // Slow enough that all `concurrency` slots stay busy with a backlog behind them.
                upstream.setBehavior(UpstreamBehavior(latencyMilliseconds: 40))
                let target = rig.target
                let instances = ["a", "b", "c"].map { letter in
                    let name = "crash-\(letter)"
                    let application = "\(schema)-\(letter)"
                    let url = server.url(schema: schema, application: application, poolSize: 6)
                    return GatewayInstance(name: name, application: application, folder: rig.folder) { port in
                        """
                        server: { listen: "127.0.0.1:\(port)", instance: "\(name)" }
                        storage: { url: "\(url)" }
                        upstreams:
                          sink:
                            endpoints: ["\(target)"]
                            idempotency: { header: "Idempotency-Key" }
                            timeouts: { total: 1s }
                        deliveries: { schedule: [0s, 100ms, 200ms, 500ms, 1s], concurrency: \(concurrency) }
                        """
                    }
                }
                defer { for instance in instances { instance.stop() } }

                // Three instances start at once on the empty schema (they migrate it once).
                try await start(instances, client: client, deadline: started + .seconds(20))
                let deliveriesTable = "\(schema).deliveries"

                // 32 clients spread the deliveries over the three instances, one key each; the
                // instance holding the most leases is killed with SIGKILL once 250 were accepted,
                // while the others keep accepting and delivering, and restarted 300 ms later.
                let load = SharedLoad()
                // As a load balancer would: a refused connection fails at once (no waiting for the
                // instance to come back), and the client tries another instance.
                var configuration = HTTPClient.Configuration()
                configuration.connectionPool.retryConnectionEstablishment = false
                configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 32
                let clients = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
                let loaded: Result<Void, any Error>
                do {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for _ in 0..<32 {
                            group.addTask {
                                while let index = load.take(below: total), ContinuousClock.now < deadline {
                                    let begun = ContinuousClock.now
                                    await accept(
                                        index,
                                        instances: instances,
                                        client: clients,
                                        load: load,
                                        deadline: deadline
                                    )
                                    // Paced, so the load goes on past the kill and the restart.
                                    try? await Task.sleep(until: begun + .milliseconds(60))
                                }
                            }
                        }
                        group.addTask {
                            while load.accepted.withLock({ $0.count }) < killAfter {
                                guard ContinuousClock.now < deadline else {
                                    throw CrashTestFailure(
                                        description: "fewer than \(killAfter) deliveries were accepted"
                                    )
                                }
                                try await Task.sleep(for: .milliseconds(2))
                            }
                            let chosen = try await busiest(instances, in: deliveriesTable, database: database)
                            load.victim.withLock { $0 = chosen }
                            try await instances[chosen].kill()
                            load.note("killed", since: started)
                            // Once its database sessions are gone nothing it sent can still commit: what
                            // it holds in flight now is what it held at its death.
                            try await waitUntilGone(instances[chosen].application, database: database)
                            let held = try await keysHeld(
                                by: instances[chosen].name,
                                in: deliveriesTable,
                                database: database
                            )
                            load.heldAtKill.withLock { $0 = held }
                            try await Task.sleep(for: .milliseconds(300))
                            try await restart(instances[chosen], client: client, deadline: deadline)
                            load.note("restarted and serving", since: started)
                        }
                        try await group.waitForAll()
                    }
                    loaded = .success(())
                } catch {
                    loaded = .failure(error)
                }
                try await clients.shutdown()
                try loaded.get()
                load.note("load done", since: started)
                let killed = try #require(load.victim.withLock { $0 })
                let held = load.heldAtKill.withLock { $0 }
                let accepted = load.accepted.withLock { $0 }
                #expect(load.refused.withLock { $0 }.isEmpty, "refused: \(load.refused.withLock { $0 }.prefix(5))")
                #expect(accepted.count == total, "\(total - accepted.count) deliveries never got a 202")
                // The kill caught deliveries in flight, and accepts that then went to another instance.
                #expect(!held.isEmpty, "the killed instance held no delivery in flight")
                #expect(held.count <= concurrency)
                #expect(load.retriedElsewhere.withLock { $0 } > 0, "no accept was retried on another instance")

                // Every accepted delivery is delivered (polled in the store, bounded).
                try await waitUntilDelivered(total, in: deliveriesTable, database: database, deadline: deadline)
                load.note("all delivered", since: started)

                // Each key is one delivery: the one its 202 named.
                var storedIDs: [String: String] = [:]
                var storedKeys = 0
                let rows = try await database.query(
                    "SELECT idempotency_key, id FROM \(unescaped: deliveriesTable)",
                    logger: Logger(label: "crash-test")
                )
                for try await (key, id) in rows.decode((String, String).self) {
                    storedKeys += 1
                    storedIDs[key] = id
                }
                #expect(storedKeys == total, "\(storedKeys) deliveries stored for \(total) keys")
                let wrong = accepted.filter { storedIDs["pgcrash-\($0.key)"] != $0.value }
                #expect(wrong.isEmpty, "\(wrong.count) keys are stored under another delivery than their 202 named")

                // Every send carried its delivery's key; every accepted key arrived.
                let requests = upstream.requests
                var sends: [String: Int] = [:]
                var mislabelled = 0
                for request in requests {
                    let key = request.headers["idempotency-key"] ?? ""
                    if request.path != "/orders/\(key.dropFirst("pgcrash-".count))" || !key.hasPrefix("pgcrash-") {
                        mislabelled += 1
                    }
                    sends[key, default: 0] += 1
                }
                #expect(mislabelled == 0, "\(mislabelled) sends did not carry their delivery's key")
                let missing = accepted.keys.filter { sends["pgcrash-\($0)", default: 0] == 0 }
                #expect(missing.isEmpty, "\(missing.count) accepted deliveries never reached the upstream")

                // Each delivery succeeded once as the store records it (an earlier recorded attempt
                // failed and was retried). A send the store has no attempt for is the one cut short by
                // the kill, of a delivery the killed instance held: at most one per delivery it held.
                var recorded: [String: Int] = [:]
                var failedAttempts = 0
                let attempts = try await database.query(
                    """
                    SELECT d.idempotency_key, COUNT(a.delivery_id),
                        COUNT(a.delivery_id) FILTER (WHERE a.status_code BETWEEN 200 AND 299)
                    FROM \(unescaped: deliveriesTable) d
                    LEFT JOIN \(unescaped: schema).delivery_attempts a ON a.delivery_id = d.id
                    GROUP BY d.idempotency_key
                    """,
                    logger: Logger(label: "crash-test")
                )
                var notOnce: [String: Int] = [:]
                for try await (key, count, successes) in attempts.decode((String, Int, Int).self) {
                    recorded[key] = count
                    failedAttempts += count - successes
                    if successes != 1 { notOnce[key] = successes }
                }
                #expect(notOnce.isEmpty, "deliveries without exactly one recorded success: \(notOnce.prefix(5))")
                let unrecorded = sends.filter { $0.value > recorded[$0.key, default: 0] }
                let beyond = unrecorded.filter { key, count in
                    count > recorded[key, default: 0] + (held.contains(key) ? 1 : 0)
                }
                #expect(beyond.isEmpty, "sends not explained by a recorded attempt or the kill: \(beyond.prefix(5))")
                #expect(unrecorded.count <= held.count)
                let duplicates = sends.filter { $0.value > 1 }.count

                // The in-flight limit holds across the three instances, not per instance.
                let peak = upstream.peakRequestsInProgress
                #expect(peak <= concurrency, "the upstream saw \(peak) requests at once (limit \(concurrency))")

                // Any instance answers any read, the restarted one too.
                for (_, id) in accepted.sorted(by: { $0.key < $1.key }).prefix(5) {
                    for instance in instances {
                        let port = instance.port.withLock { $0 }
                        let response = try await client.execute(
                            HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/deliveries/\(id)"),
                            timeout: .seconds(5)
                        )
                        _ = try await response.body.collect(upTo: 1 << 20)
                        #expect(response.status == .ok, "\(instance.name) could not read \(id)")
                    }
                }
                print(
                    """
                    three-instance crash: \(total) accepted (by instance \(load.acceptedBy.withLock { $0 }), \
                    \(load.retriedElsewhere.withLock { $0 }) after a failure, \(load.replayed.withLock { $0 }) replayed), \
                    \(instances[killed].name) killed holding \(held.count), \(requests.count) sends, \
                    \(unrecorded.count) unrecorded, \(failedAttempts) failed attempts, \(duplicates) keys sent twice, peak \(peak)/\(concurrency) in flight, \
                    \(load.timeline.withLock { $0 }.joined(separator: ", "))
                    """
                )
            }
        }
    }

    /// Starts every instance at once and waits until each serves; one whose port another
    /// process took in between is started again on another port.
    func start(_ instances: [GatewayInstance], client: HTTPClient, deadline: ContinuousClock.Instant) async throws {
        for instance in instances { try instance.launch(port: try freeLoopbackPort()) }
        for instance in instances {
            var tries = 1
            while try await !instance.waitUntilServing(client: client, deadline: deadline) {
                guard tries < 5, ContinuousClock.now < deadline else {
                    throw CrashTestFailure(description: "\(instance.name) did not start: \(instance.logTail)")
                }
                instance.stop()
                try instance.launch(port: try freeLoopbackPort())
                tries += 1
            }
        }
    }

    /// Starts `instance` again on its port and config, and waits until it serves.
    func restart(_ instance: GatewayInstance, client: HTTPClient, deadline: ContinuousClock.Instant) async throws {
        let port = instance.port.withLock { $0 }
        try instance.launch(port: port)
        while try await !instance.waitUntilServing(client: client, deadline: deadline) {
            guard ContinuousClock.now < deadline else {
                throw CrashTestFailure(description: "\(instance.name) did not restart: \(instance.logTail)")
            }
            try await Task.sleep(for: .milliseconds(100))
            try instance.launch(port: port)
        }
    }

    /// The instance holding the most leases now, waiting (at most 2 s) until one holds at least
    /// three: the kill should catch deliveries in flight, and a 40 ms send may finish between
    /// this read and the kill (at the deadline, the busiest seen holding any).
    func busiest(_ instances: [GatewayInstance], in table: String, database: PostgresConnection) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(2)
        var fallback = 1
        while ContinuousClock.now < deadline {
            var held = [Int](repeating: 0, count: instances.count)
            let rows = try await database.query(
                "SELECT lease_owner FROM \(unescaped: table) WHERE status = 'in_flight' AND lease_owner IS NOT NULL",
                logger: Logger(label: "crash-test")
            )
            for try await owner in rows.decode(String.self) {
                if let index = instances.firstIndex(where: { owner.hasPrefix($0.name + "/") }) { held[index] += 1 }
            }
            if let most = held.max(), most > 0, let index = held.firstIndex(of: most) {
                if most >= 3 { return index }
                fallback = index
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        return fallback
    }

    /// Waits (at most 5 s) until no database session named `application` is left.
    func waitUntilGone(_ application: String, database: PostgresConnection) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            let rows = try await database.query(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = \(application)",
                logger: Logger(label: "crash-test")
            )
            var sessions = 0
            for try await count in rows.decode(Int.self) { sessions = count }
            if sessions == 0 { return }
            guard ContinuousClock.now < deadline else {
                throw CrashTestFailure(description: "\(sessions) sessions of a killed instance stayed open")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The keys of the deliveries leased to the workers of instance `name`.
    func keysHeld(by name: String, in table: String, database: PostgresConnection) async throws -> Set<String> {
        let rows = try await database.query(
            """
            SELECT idempotency_key FROM \(unescaped: table)
            WHERE status = 'in_flight' AND starts_with(lease_owner, \(name + "/"))
            """,
            logger: Logger(label: "crash-test")
        )
        var keys = Set<String>()
        for try await key in rows.decode(String.self) { keys.insert(key) }
        return keys
    }

    /// Waits until `total` deliveries are stored and all are delivered, or fails at `deadline`.
    func waitUntilDelivered(
        _ total: Int,
        in table: String,
        database: PostgresConnection,
        deadline: ContinuousClock.Instant
    ) async throws {
        while true {
            var counts: [String: Int] = [:]
            let rows = try await database.query(
                "SELECT status, COUNT(*) FROM \(unescaped: table) GROUP BY status",
                logger: Logger(label: "crash-test")
            )
            for try await (status, count) in rows.decode((String, Int).self) { counts[status] = count }
            if counts == ["delivered": total] { return }
            guard ContinuousClock.now < deadline else {
                throw CrashTestFailure(description: "not all delivered by the deadline: \(counts)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
