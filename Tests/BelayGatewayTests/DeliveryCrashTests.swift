import AsyncHTTPClient
import BelayGateway
import BelayTestUpstream
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `belay` binary, when `swift build` has built it from the current sources.
enum BelayBinary {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let path = root.appendingPathComponent(".build/debug/belay").path

    /// Whether the binary exists and is newer than every source file (`swift test` does
    /// not rebuild executables; `swift build` and `.ci/run` do).
    static var isFresh: Bool {
        guard let built = modified(path) else { return false }
        let sources = root.appendingPathComponent("Sources")
        guard let files = FileManager.default.enumerator(atPath: sources.path) else { return false }
        for case let file as String in files where file.hasSuffix(".swift") {
            if let changed = modified(sources.appendingPathComponent(file).path), changed > built { return false }
        }
        return true
    }

    private static func modified(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
func freeLoopbackPort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
    }
    guard bound == 0 else { throw CancellationError() }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// What the clients of one crash run share.
final class CrashRun: Sendable {
    let accepted = Mutex<Set<Int>>([])
    let next = Mutex(0)
    let killed = Mutex(false)
    let deliveredAtKill = Mutex(0)
    let remaining = Mutex<[Int]>([])
    let acknowledged = Mutex<[Int: String]>([:])

    /// Runs `workers` senders over the indexes `0..<total` (each sent once, by `send`, which
    /// says how many have succeeded so far, or nil when this one failed) until `killAfter`
    /// have succeeded, then SIGKILLs `victim` and notes what `upstream` had received.
    func sendUntilKilled(
        workers: Int,
        total: Int,
        killAfter: Int,
        victim: Int32,
        upstream: TestUpstream,
        send: @escaping @Sendable (Int) async -> Int?
    ) async {
        await withTaskGroup(of: Void.self) { senders in
            for _ in 0..<workers {
                senders.addTask {
                    while !self.killed.withLock({ $0 }) {
                        let index = self.next.withLock { value -> Int in
                            defer { value += 1 }
                            return value
                        }
                        guard index < total else { return }
                        guard let count = await send(index) else { continue }
                        if count == killAfter {
                            kill(victim, SIGKILL)
                            self.deliveredAtKill.withLock { $0 = upstream.requests.count }
                            self.killed.withLock { $0 = true }
                        }
                    }
                }
            }
        }
    }
}

/// What a crash test runs against: a test upstream answering after 10 ms (so a backlog
/// exists at the kill), a client, and a scratch folder for the config and the database.
struct CrashRig: Sendable {
    let upstream: TestUpstream
    let client: HTTPClient
    let folder: URL
    /// The upstream's base URL.
    let target: String

    /// Where the gateway's config is written.
    var config: String { folder.appendingPathComponent("belay.yaml").path }

    /// Runs `body` with a rig, then stops the upstream and the client (on failure too).
    static func run(_ body: (CrashRig) async throws -> Void) async throws {
        var logger = Logger(label: "crash-test")
        logger.logLevel = .critical
        let upstream = TestUpstream(logger: logger)
        upstream.setBehavior(UpstreamBehavior(latencyMilliseconds: 10))
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let upstreams = ServiceGroup(
            configuration: .init(services: [.init(service: upstream)], gracefulShutdownSignals: [], logger: logger)
        )
        let outcome: Result<Void, any Error> = await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await upstreams.run() }
            let rig = CrashRig(upstream: upstream, client: client, folder: folder, target: await upstream.baseURL())
            let outcome: Result<Void, any Error>
            do {
                try await body(rig)
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            await upstreams.triggerGracefulShutdown()
            try? await group.waitForAll()
            return outcome
        }
        try await client.shutdown()
        try outcome.get()
    }

    /// Waits (at most 60 s) until every value in `expected` has arrived at the upstream in the
    /// header `header`; returns the ones that never did.
    func missing(_ expected: Set<String>, inHeader header: String) async throws -> Set<String> {
        var received = Set<String>()
        for _ in 0..<3_000 {
            received = Set(upstream.requests.compactMap { $0.headers[header] })
            if expected.isSubset(of: received) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        return expected.subtracting(received)
    }
}

@Suite(.serialized) struct DeliveryCrashTests: Sendable {
    /// Starts `belay serve` on a free port with the config `yaml(port)` writes to `path`,
    /// and waits until it serves. Another test's server may take a free port between our
    /// look and belay's bind: then belay exits, and it is started again on another port.
    func startGateway(
        writing yaml: (Int) -> String,
        to path: String,
        upstream: String,
        client: HTTPClient
    ) async throws -> (Process, Int) {
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            try yaml(port).write(toFile: path, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: BelayBinary.path)
            process.arguments = ["serve", "--config", path, "--log-format", "json", "--log-level", "error"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<500 where process.isRunning {
                // Ours if it serves the upstream our config names.
                if let response = try? await client.execute(
                    HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/upstreams/\(upstream)"),
                    timeout: .seconds(1)
                ), response.status == .ok, process.isRunning {
                    return (process, port)
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
        throw CancellationError()
    }

    /// Queues one delivery with `key`; true when the gateway answered 202.
    func queue(_ index: Int, port: Int, client: HTTPClient) async -> Bool {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/deliveries")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: "crash-\(index)")
        request.body = .bytes(
            ByteBuffer(
                string: #"{"upstream":"sink","method":"POST","path":"/orders/\#(index)","body":{"i":\#(index)}}"#
            )
        )
        // Short: a request caught by the kill may hang on its pooled connection.
        guard let response = try? await client.execute(request, timeout: .seconds(2)) else { return false }
        _ = try? await response.body.collect(upTo: 1 << 16)
        return response.status == .accepted
    }

    @Test(
        .enabled(if: BelayBinary.isFresh, "needs .build/debug/belay built from the current sources: run swift build"),
        .timeLimit(.minutes(2))
    )
    func aSIGKILLWhileAcceptingAndDeliveringLosesNothingThatGotA202() async throws {
        let total = 2_000
        let killAfter = 800
        try await CrashRig.run { rig in
            let (upstream, client, folder, config, target) = (
                rig.upstream, rig.client, rig.folder, rig.config, rig.target
            )
            let yaml = { (port: Int) in
                """
                server: { listen: "127.0.0.1:\(port)", drain: 0s }
                storage: { url: "sqlite:\(folder.path)/data/belay.db" }
                upstreams:
                  sink:
                    endpoints: ["\(target)"]
                    idempotency: { header: "Idempotency-Key" }
                deliveries: { schedule: [0s, 100ms, 200ms, 500ms, 1s, 2s, 5s], concurrency: 16 }
                """
            }

            // Phase 1: 32 clients queue deliveries; the gateway is killed with SIGKILL
            // once 800 have been accepted, while it still accepts and delivers.
            let (gateway, port) = try await startGateway(writing: yaml, to: config, upstream: "sink", client: client)
            let run = CrashRun()
            await run.sendUntilKilled(
                workers: 32,
                total: total,
                killAfter: killAfter,
                victim: gateway.processIdentifier,
                upstream: upstream
            ) { index in
                guard await queue(index, port: port, client: client) else { return nil }
                return run.accepted.withLock { set in
                    set.insert(index)
                    return set.count
                }
            }
            gateway.waitUntilExit()
            #expect(gateway.terminationReason == .uncaughtSignal)
            let acceptedBeforeKill = run.accepted.withLock { $0.count }
            #expect(acceptedBeforeKill >= killAfter)
            // The kill interrupted delivery: some accepted deliveries had not arrived yet.
            #expect(run.deliveredAtKill.withLock { $0 } < acceptedBeforeKill)

            // Phase 2: restart on the same database and queue, from a new client, what never
            // got a 202 (a request cut off by the kill is repeated with its key, as a
            // client would).
            let retryClient = HTTPClient(eventLoopGroupProvider: .singleton)
            let (restarted, port2) = try await startGateway(
                writing: yaml,
                to: config,
                upstream: "sink",
                client: retryClient
            )
            defer {
                restarted.terminate()
                restarted.waitUntilExit()
            }
            let missed = (0..<total).filter { index in !run.accepted.withLock { $0.contains(index) } }
            run.remaining.withLock { $0 = missed }
            await withTaskGroup(of: Void.self) { clients in
                for _ in 0..<32 {
                    clients.addTask {
                        while let index = run.remaining.withLock({ $0.popLast() }) {
                            var ok = false
                            for _ in 0..<3 where !ok { ok = await queue(index, port: port2, client: retryClient) }
                            if ok { run.accepted.withLock { _ = $0.insert(index) } }
                        }
                    }
                }
            }
            try await retryClient.shutdown()
            #expect(run.accepted.withLock { $0.count } == total)

            // Every delivery that got a 202 reaches the upstream, counted by idempotency key.
            let expected = Set(run.accepted.withLock { $0 }.map { "crash-\($0)" })
            let missing = try await rig.missing(expected, inHeader: "idempotency-key")
            #expect(missing.isEmpty, "\(missing.count) accepted deliveries never reached the upstream")
            let arrivals = upstream.requests.count
            // At-least-once: a delivery in flight at the kill may arrive twice, never zero times.
            #expect(arrivals >= expected.count)
        }
    }

    /// Posts one signed event; Belay's event id when the gateway acknowledged it with 200.
    func postWebhook(_ index: Int, port: Int, client: HTTPClient) async -> String? {
        let body = #"{"type":"order.paid","n":\#(index)}"#
        guard let signer = StandardWebhooksSigner(secret: Secret(inboxSecret)) else { return nil }
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/webhooks/shop")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for field in signer.sign(id: "msg_\(index)", timestamp: Date(), body: Data(body.utf8)) {
            request.headers.add(name: field.name.rawName, value: field.value)
        }
        request.body = .bytes(ByteBuffer(string: body))
        guard let response = try? await client.execute(request, timeout: .seconds(2)),
            let bytes = try? await response.body.collect(upTo: 1 << 16), response.status == .ok,
            let object = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any]
        else { return nil }
        return object["id"] as? String
    }

    @Test(
        .enabled(if: BelayBinary.isFresh, "needs .build/debug/belay built from the current sources: run swift build"),
        .timeLimit(.minutes(2))
    )
    func aSIGKILLAfterAcknowledgingWebhooksLosesNoForward() async throws {
        let total = 1_000
        let killAfter = 400
        try await CrashRig.run { rig in
            let (upstream, client, folder, config, target) = (
                rig.upstream, rig.client, rig.folder, rig.config, rig.target
            )
            let yaml = { (port: Int) in
                """
                server: { listen: "127.0.0.1:\(port)", drain: 0s }
                storage: { url: "sqlite:\(folder.path)/data/belay.db" }
                upstreams:
                  marker: { endpoints: ["\(target)"] }
                deliveries: { schedule: [0s, 100ms, 200ms, 500ms, 1s, 2s, 5s], concurrency: 16 }
                webhooks:
                  shop:
                    verify: { scheme: standard-webhooks, secret: "\(inboxSecret)" }
                    forward_to: "\(target)/hooks"
                    forward_secret: "\(forwardSecret)"
                """
            }

            // Phase 1: 16 providers post signed events; SIGKILL after 400 acknowledgements.
            let (gateway, port) = try await startGateway(writing: yaml, to: config, upstream: "marker", client: client)
            let run = CrashRun()
            await run.sendUntilKilled(
                workers: 16,
                total: total,
                killAfter: killAfter,
                victim: gateway.processIdentifier,
                upstream: upstream
            ) { index in
                guard let id = await postWebhook(index, port: port, client: client) else { return nil }
                return run.acknowledged.withLock { acks in
                    acks[index] = id
                    return acks.count
                }
            }
            gateway.waitUntilExit()
            let ackedBeforeKill = run.acknowledged.withLock { $0.count }
            #expect(run.deliveredAtKill.withLock { $0 } < ackedBeforeKill)

            // Phase 2: restart; the providers send again what was never acknowledged (a
            // repeat of an event stored before the kill is acknowledged as a duplicate,
            // with the first event's id).
            let retryClient = HTTPClient(eventLoopGroupProvider: .singleton)
            let (restarted, port2) = try await startGateway(
                writing: yaml,
                to: config,
                upstream: "marker",
                client: retryClient
            )
            defer {
                restarted.terminate()
                restarted.waitUntilExit()
            }
            for index in 0..<total where run.acknowledged.withLock({ $0[index] == nil }) {
                for _ in 0..<3 {
                    if let id = await postWebhook(index, port: port2, client: retryClient) {
                        run.acknowledged.withLock { $0[index] = id }
                        break
                    }
                }
            }
            try await retryClient.shutdown()
            let expected = Set(run.acknowledged.withLock { $0.values })
            #expect(expected.count == total)

            // Every acknowledged event is forwarded, identified by its webhook-id.
            let missing = try await rig.missing(expected, inHeader: "webhook-id")
            #expect(missing.isEmpty, "\(missing.count) acknowledged events were never forwarded")
        }
    }
}
