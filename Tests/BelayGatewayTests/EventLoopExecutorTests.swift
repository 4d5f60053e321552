import AsyncHTTPClient
import NIOCore
import NIOPosix
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

    @Test func thereIsOneExecutorForEachLoopOfTheUpstreamClientsGroup() {
        let table = EventLoopExecutor.table(for: HTTPClient.defaultEventLoopGroup)
        let loops = Array(HTTPClient.defaultEventLoopGroup.makeIterator())
        #expect(table.count == loops.count)
        for loop in loops {
            #expect(table[ObjectIdentifier(loop)]?.eventLoop === loop)
        }
    }
}
