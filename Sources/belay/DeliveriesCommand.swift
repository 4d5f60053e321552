import ArgumentParser
import BelayAPI
import BelayClient
import BelayGateway
import Foundation

struct Deliveries: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect and operate the durable delivery queue of a running gateway.",
        discussion: """
            Talks to a running belay serve over its management API (/v1/deliveries). When the \
            gateway has consumers configured, set the API key with --api-key or, to keep it out \
            of the process list, BELAY_API_KEY; a consumer sees its own deliveries, admin sees \
            all. A dead delivery waits in the dead-letter queue until it is retried or cancelled.

            Examples:
              belay deliveries list --status dead
              belay deliveries show dlv_0194f2a1c3b2…
              belay deliveries retry dlv_0194f2a1c3b2…
              belay deliveries list --upstream payments --limit 10 --url http://10.0.0.5:8080
            """,
        subcommands: [List.self, Show.self, Retry.self, Cancel.self, Ack.self]
    )

    typealias Answer = ManagementClient.Answer

    struct Connection: ParsableArguments {
        @Option(help: "The gateway's base URL.")
        var url: String = "http://127.0.0.1:8080"

        @Option(help: "The API key (default: $BELAY_API_KEY).")
        var apiKey: String?

        var client: ManagementClient {
            ManagementClient(baseURL: url, apiKey: apiKey ?? ProcessInfo.processInfo.environment["BELAY_API_KEY"])
        }

        /// Calls the gateway; prints a problem and exits 1 unless it answered 2xx.
        func call(_ body: (ManagementClient) async throws -> Answer) async throws -> Answer {
            let answer: Answer
            do {
                answer = try await body(client)
            } catch {
                printError("cannot reach the gateway at \(url): \(error)")
                throw ExitCode(1)
            }
            guard (200..<300).contains(answer.status) else {
                printError(answer.problemSummary)
                throw ExitCode(1)
            }
            return answer
        }

        /// The answer as one of the contract's types; one that does not read is reported, exit 1.
        func decode<Value: Decodable>(_ type: Value.Type, _ answer: Answer) throws -> Value {
            do {
                return try answer.decode(type)
            } catch {
                printError("the gateway's answer is not a \(type) as this belay reads it: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List deliveries, newest first.")

        @OptionGroup var connection: Connection
        @Option(help: "Only this status: pending, in_flight, delivered, acknowledged, dead, cancelled.")
        var status: String?
        @Option(help: "Only this upstream.")
        var upstream: String?
        @Option(help: "How many (1–500).")
        var limit: Int = 50
        @Option(help: "Continue from a previous page's cursor.")
        var cursor: String?

        func validate() throws {
            guard (1...500).contains(limit) else { throw ValidationError("--limit must be from 1 to 500") }
        }

        func run() async throws {
            let path = ManagementClient.path(
                "/v1/deliveries",
                [("limit", String(limit)), ("status", status), ("upstream", upstream), ("cursor", cursor)]
            )
            let answer = try await connection.call { try await $0.get(path) }
            print(DeliveryTable.list(try connection.decode(DeliveryPage.self, answer)))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one delivery and every attempt.")

        @OptionGroup var connection: Connection
        @Argument(help: "The delivery's id.") var id: String

        func run() async throws {
            let answer = try await connection.call {
                try await $0.get("/v1/deliveries/" + ManagementClient.escaped(id))
            }
            print(DeliveryTable.show(try connection.decode(DeliveryDetail.self, answer)))
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replay a dead or cancelled delivery now.")

        @OptionGroup var connection: Connection
        @Argument(help: "The delivery's id.") var id: String

        func run() async throws {
            let path = "/v1/deliveries/\(ManagementClient.escaped(id))/retry"
            let answer = try await connection.call { try await $0.post(path) }
            print("\(id): \(try connection.decode(DeliverySummary.self, answer).status)")
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a pending or dead delivery.")

        @OptionGroup var connection: Connection
        @Argument(help: "The delivery's id.") var id: String

        func run() async throws {
            let path = "/v1/deliveries/\(ManagementClient.escaped(id))/cancel"
            let answer = try await connection.call { try await $0.post(path) }
            print("\(id): \(try connection.decode(DeliverySummary.self, answer).status)")
        }
    }

    struct Ack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Acknowledge a delivery.")

        @OptionGroup var connection: Connection
        @Argument(help: "The delivery's id.") var id: String

        func run() async throws {
            let path = "/v1/deliveries/\(ManagementClient.escaped(id))/ack"
            let answer = try await connection.call { try await $0.post(path) }
            print("\(id): \(try connection.decode(DeliverySummary.self, answer).status)")
        }
    }
}
