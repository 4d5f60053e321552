import ArgumentParser
import BelayAPI
import BelayClient
import BelayGateway

struct Upstreams: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the health of a running gateway's upstreams.",
        discussion: """
            Talks to a running belay serve over its management API (GET /v1/upstreams). Each \
            upstream is healthy, degraded, stale or down, with the reason in words, its last \
            minute's error and retry rates and its latency. When the gateway has consumers \
            configured, set the API key with --api-key or BELAY_API_KEY (scope upstreams:read).

            Examples:
              belay upstreams list
              belay upstreams show payments
            """,
        subcommands: [List.self, Show.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every upstream and its state.")

        @OptionGroup var connection: Deliveries.Connection

        func run() async throws {
            let answer = try await connection.call { try await $0.get("/v1/upstreams") }
            print(UpstreamTable.list(try connection.decode(UpstreamList.self, answer)))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one upstream: endpoints, windows, breaker history, probe."
        )

        @OptionGroup var connection: Deliveries.Connection
        @Argument(help: "The upstream's name.") var name: String

        func run() async throws {
            let answer = try await connection.call {
                try await $0.get("/v1/upstreams/" + ManagementClient.escaped(name))
            }
            print(UpstreamTable.show(try connection.decode(UpstreamDetail.self, answer).upstream))
        }
    }
}
