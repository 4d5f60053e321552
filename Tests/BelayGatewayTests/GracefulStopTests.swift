import AsyncHTTPClient
import BelayGateway
import BelayTestUpstream
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A graceful stop seen from outside (issue 16, "Drain"): `/readyz` turns 503 at once while
/// new connections are still served for `server.drain`; then the listener closes, what is in
/// flight finishes, and the process exits 0. Every wait polls against a deadline.
@Suite(.serialized, .timeLimit(.minutes(2))) struct GracefulStopTests {
    /// What one connection, opened now, got for `GET path`: the status, or nil when the
    /// connection was refused or closed without an answer.
    static func status(port: Int, _ path: String) async -> Int? {
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        return try? await RawClient.exchange(port: port, [request], bound: .seconds(5)).status
    }

    /// Polls `condition` every 10 ms until it holds (true) or `deadline` passes (false).
    static func poll(until deadline: ContinuousClock.Instant, _ condition: () async -> Bool) async -> Bool {
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return await condition()
    }

    /// Starts `belay serve` on a free port with the config `yaml(port)`, its JSON log (level
    /// info) written to `log`, and waits until it serves. Another test's server may take the
    /// port between our look and belay's bind: then belay exits, and it is started again.
    func startServe(
        _ yaml: (Int) -> String,
        folder: URL,
        log: String,
        client: HTTPClient
    ) async throws -> (Process, Int) {
        let config = folder.appendingPathComponent("belay.yaml").path
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            try yaml(port).write(toFile: config, atomically: true, encoding: .utf8)
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: BelayBinary.path)
            process.arguments = ["serve", "--config", config, "--log-format", "json", "--log-level", "info"]
            let output = FileHandle(forWritingAtPath: log)
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            try? output?.close()  // the child has its own copy
            let serving = await Self.poll(until: .now + .seconds(20)) {
                guard process.isRunning,
                    let response = try? await client.execute(
                        HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/upstreams/pay"),
                        timeout: .seconds(1)
                    )
                else { return !process.isRunning }
                return response.status == .ok
            }
            if serving, process.isRunning { return (process, port) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        throw CancellationError()
    }

    @Test(.enabled(if: BelayBinary.isFresh, "needs .build/debug/belay built from the current sources: run swift build"))
    func onSIGTERMReadyzTurns503WhileNewConnectionsAreServedThenTheListenerClosesAndItExits0() async throws {
        var logger = Logger(label: "graceful-stop-test")
        logger.logLevel = .critical
        let upstream = TestUpstream(logger: logger)
        // The request in flight at SIGTERM takes 4 s: it outlasts the 2 s drain.
        upstream.setBehavior(UpstreamBehavior(latencyMilliseconds: 4_000), for: "/v1/slow")
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-stop-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let log = folder.appendingPathComponent("belay.log").path
        let upstreams = ServiceGroup(
            configuration: .init(services: [.init(service: upstream)], gracefulShutdownSignals: [], logger: logger)
        )
        let outcome: Result<Void, any Error> = await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await upstreams.run() }
            let target = await upstream.baseURL()
            let result: Result<Void, any Error>
            do {
                try await stopAndWatch(upstream: upstream, target: target, folder: folder, log: log, client: client)
                result = .success(())
            } catch {
                result = .failure(error)
            }
            await upstreams.triggerGracefulShutdown()
            try? await group.waitForAll()
            return result
        }
        try await client.shutdown()
        try outcome.get()
    }

    private func stopAndWatch(
        upstream: TestUpstream,
        target: String,
        folder: URL,
        log: String,
        client: HTTPClient
    ) async throws {
        let yaml = { (port: Int) in
            """
            server: { listen: "127.0.0.1:\(port)", drain: 2s }
            storage: { url: "sqlite:\(folder.path)/data/belay.db" }
            upstreams:
              pay:
                endpoints: ["\(target)"]
                timeouts: { attempt: 10s, total: 10s }
            """
        }
        let (gateway, port) = try await startServe(yaml, folder: folder, log: log, client: client)
        defer {
            if gateway.isRunning { kill(gateway.processIdentifier, SIGKILL) }
            gateway.waitUntilExit()
        }
        #expect(await Self.status(port: port, "/readyz") == 200)

        // A request in flight: arrived at the upstream before the signal.
        let inFlight = Task {
            let response = try await client.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(port)/proxy/pay/v1/slow"),
                timeout: .seconds(30)
            )
            let body = try await response.body.collect(upTo: 1 << 16)
            return (response.status.code, String(buffer: body), ContinuousClock.now)
        }
        await upstream.waitForArrivals(1)

        let signalled = ContinuousClock.now
        kill(gateway.processIdentifier, SIGTERM)

        // 1. /readyz answers 503 draining, on a new connection, well before the drain ends.
        let turned = await Self.poll(until: signalled + .milliseconds(1_500)) {
            await Self.status(port: port, "/readyz") == 503
        }
        #expect(turned, "/readyz did not turn 503 within 1.5 s of SIGTERM")
        // A second SIGTERM (an impatient operator) changes nothing: same drain, same exit.
        kill(gateway.processIdentifier, SIGTERM)
        let readyz = try await RawClient.exchange(
            port: port,
            ["GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"]
        )
        #expect(readyz.status == 503)
        #expect(readyz.header("Content-Type") == "application/problem+json")
        #expect(readyz.body.contains(#""code":"draining""#), "\(readyz.body)")

        // 2. After it turned, a new connection is still served, health and proxy alike.
        #expect(await Self.status(port: port, "/healthz") == 200)
        #expect(await Self.status(port: port, "/proxy/pay/v1/fast") == 200)
        #expect(gateway.isRunning)

        // 3. Then the listener closes: a connection is refused, no earlier than the drain.
        let closed = await Self.poll(until: signalled + .seconds(15)) {
            (try? await RawClient.exchange(
                port: port,
                ["GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"],
                bound: .seconds(2)
            )) == nil
        }
        let closedAt = ContinuousClock.now
        #expect(closed, "the listener still accepted 15 s after SIGTERM")
        #expect(closedAt - signalled >= .seconds(2), "the listener closed before server.drain (2s) had passed")

        // 4. The request in flight at SIGTERM still gets its answer, after the listener closed.
        let (status, body, answeredAt) = try await inFlight.value
        #expect(status == 200)
        #expect(body == #"{"ok":true}"#, "\(body)")
        #expect(answeredAt > closedAt)

        // 5. The process exits 0, soon after what was in flight finished.
        let exited = await Self.poll(until: .now + .seconds(15)) { !gateway.isRunning }
        #expect(exited, "belay serve still ran 15 s after the last request finished")
        guard exited else { return }
        #expect(gateway.terminationReason == .exit)
        #expect(gateway.terminationStatus == 0)

        // The log tells the same order: draining, drained, then stopped.
        let lines = (try String(contentsOfFile: log, encoding: .utf8)).split(separator: "\n")
        let draining = lines.firstIndex { $0.contains("draining: /readyz answers 503") }
        let drained = lines.firstIndex { $0.contains("drained: the listener closes") }
        #expect(draining != nil && drained != nil, "\(lines)")
        if let draining, let drained { #expect(draining < drained) }
    }

    /// A connection still busy once the server stops (a body that never arrives whole, its
    /// `body_timeout` 60 s) is closed after the longest policy `total` timeout plus a second
    /// (here 2 s), so it does not hold the stop for a minute.
    @Test func aConnectionStillBusyAfterTheInFlightBoundIsClosed() async throws {
        var logger = Logger(label: "graceful-stop-test")
        logger.logLevel = .critical
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-stop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = try ConfigLoader(environment: [:]).load(
            yaml: """
                server: { listen: "127.0.0.1:0", drain: 0s, body_timeout: 60s }
                upstreams:
                  pay:
                    endpoints: ["http://127.0.0.1:9"]
                    timeouts: { connect: 500ms, attempt: 1s, total: 1s }
                """
        )
        config.storage = .sqlite(path: folder.appendingPathComponent("belay.db").path)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = try await buildApplication(config: config, logger: logger) { portContinuation.yield($0) }
        let gateway = ServiceGroup(
            configuration: .init(services: [.init(service: app)], gracefulShutdownSignals: [], logger: logger)
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await gateway.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            let (stopped, closedAt): (ContinuousClock.Instant, ContinuousClock.Instant?) =
                try await channel.executeThenClose { inbound, outbound in
                    // One write: a request answered at once, then one whose body stops short. Once
                    // the first answer is back, the server has read the second head too (one read).
                    try await outbound.write(
                        ByteBuffer(
                            string: "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                                + "POST /v1/deliveries HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"upstream\":"
                        )
                    )
                    var received = ""
                    var reading = inbound.makeAsyncIterator()
                    while !received.contains(#"{"status":"ok"}"#), let buffer = try await reading.next() {
                        received += String(buffer: buffer)
                    }
                    let stopped = ContinuousClock.now
                    guard received.contains(#"{"status":"ok"}"#) else { return (stopped, nil) }
                    await gateway.triggerGracefulShutdown()
                    do {
                        while try await reading.next() != nil {}
                    } catch {
                        // A reset is a close too.
                    }
                    return (stopped, ContinuousClock.now)
                }
            let closed = try #require(closedAt, "the connection closed before its first answer")
            // Not before the bound (2 s), and long before the body timeout (60 s).
            #expect(closed - stopped >= .seconds(2))
            #expect(closed - stopped < .seconds(30))
            try await group.next()
            #expect(ContinuousClock.now - stopped < .seconds(30))
        }
    }

    @Test(.enabled(if: BelayBinary.isFresh, "needs .build/debug/belay built from the current sources: run swift build"))
    func onSIGHUPAValidConfigIsAppliedAndAnInvalidOneRefusedWhileTheGatewayServesOn() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-hup-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let log = folder.appendingPathComponent("belay.log").path
        let config = folder.appendingPathComponent("belay.yaml").path
        let yaml = { (port: Int, attempt: String) in
            """
            server: { listen: "127.0.0.1:\(port)", drain: 0s }
            storage: { url: "sqlite:\(folder.path)/data/belay.db" }
            upstreams:
              pay: { endpoints: ["http://127.0.0.1:9"], timeouts: { attempt: \(attempt), total: 20s } }
            """
        }
        let outcome: Result<Void, any Error>
        do {
            let (gateway, port) = try await startServe({ yaml($0, "2s") }, folder: folder, log: log, client: client)
            defer {
                if gateway.isRunning { kill(gateway.processIdentifier, SIGKILL) }
                gateway.waitUntilExit()
            }
            func logged(_ text: String) async -> Bool {
                await Self.poll(until: .now + .seconds(20)) {
                    ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(text)
                }
            }
            try yaml(port, "3s").write(toFile: config, atomically: true, encoding: .utf8)
            kill(gateway.processIdentifier, SIGHUP)
            #expect(await logged("config reload applied (upstreams.pay)"))

            try yaml(port, "soon").write(toFile: config, atomically: true, encoding: .utf8)
            kill(gateway.processIdentifier, SIGHUP)
            #expect(await logged("config reload refused"))
            #expect(await logged("upstreams.pay.timeouts.attempt"))
            #expect(gateway.isRunning)
            #expect(await Self.status(port: port, "/v1/upstreams/pay") == 200)

            kill(gateway.processIdentifier, SIGTERM)
            gateway.waitUntilExit()
            #expect(gateway.terminationStatus == 0)
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        try await client.shutdown()
        try outcome.get()
    }
}
