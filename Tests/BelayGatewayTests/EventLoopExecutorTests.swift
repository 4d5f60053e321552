import AsyncHTTPClient
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing

@testable import BelayGateway

@Suite struct EventLoopExecutorTests {
    @Test func workPreferringTheExecutorRunsOnItsLoopAcrossAwaits() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let executor = EventLoopExecutor(loop)
        let onLoop = await withTaskExecutorPreference(executor) {
            var seen: [Bool] = [loop.inEventLoop]
            try? await Task.sleep(for: .milliseconds(1))
            seen.append(loop.inEventLoop)
            // Child tasks inherit the preference.
            await withTaskGroup(of: Bool.self) { group in
                group.addTask { loop.inEventLoop }
                for await child in group { seen.append(child) }
            }
            return seen
        }
        #expect(onLoop == [true, true, true])
    }

    @Test func thereIsOneExecutorForEachLoopOfTheGroup() {
        let group = EventLoopGroupProvider.singleton.eventLoopGroup
        let table = EventLoopExecutor.table(for: group)
        let loops = Array(group.makeIterator())
        #expect(table.count == loops.count)
        for loop in loops {
            #expect(table[ObjectIdentifier(loop)]?.eventLoop === loop)
        }
    }

    @Test func eachConnectionIsServedOnItsEventLoop() async throws {
        let router = Router()
        router.get("where") { _, _ in
            MultiThreadedEventLoopGroup.currentEventLoop == nil ? "pool" : "loop"
        }
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let app = Application(
            router: router,
            server: .http1(
                boundToLoopsOf: EventLoopGroupProvider.singleton.eventLoopGroup,
                server: .init(),
                inFlightBound: .seconds(11)
            ),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let services = ServiceGroup(
            configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger)
        )
        let answer = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let response = try await HTTPClient.shared.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(port)/where"),
                timeout: .seconds(30)
            )
            let body = String(buffer: try await response.body.collect(upTo: 1024))
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
            return body
        }
        #expect(answer == "loop")
    }
}
