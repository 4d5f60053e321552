import BelayTestUpstream
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

// `belay-test-upstream [port]`: the scriptable test upstream on 127.0.0.1:<port> (default a free
// one, printed as `listening on <port>`), until SIGTERM or SIGINT. Its behaviour is set over
// HTTP: `PUT /__upstream/behavior` with `UpstreamBehavior`'s JSON (`?path=/x` for one prefix),
// e.g. `{"latencyMilliseconds":20,"capacity":8,"capacityQueue":8}`; `GET /__upstream/capacity`
// reads what a capacity served and refused. For the benchmarks (scripts/bench-capacity.sh).
var logger = Logger(label: "belay.test-upstream")
logger.logLevel = .warning
let arguments = CommandLine.arguments.dropFirst()
guard arguments.count <= 1, let port = Int(arguments.first ?? "0"), (0...65_535).contains(port) else {
    FileHandle.standardError.write(Data("usage: belay-test-upstream [port]\n".utf8))
    exit(2)
}
let upstream = TestUpstream(port: port, logger: logger)
let group = ServiceGroup(
    configuration: .init(
        services: [.init(service: upstream)],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
)
Task {
    FileHandle.standardOutput.write(Data("listening on \(await upstream.port())\n".utf8))
}
try await group.run()
