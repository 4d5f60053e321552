import ArgumentParser
import BelayAPI
import BelayClient
import BelayGateway
import Foundation

struct Webhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show and replay the events of a running gateway's webhook inbox.",
        discussion: """
            Talks to a running belay serve over its management API (/v1/webhooks/events). Every \
            event a provider sent is kept (retention.webhook_events, 30 days by default) with its \
            forward to your application: a delivery with its own attempts. A replay forwards the \
            event's exact bytes again now, with the same webhook-id, so your application can \
            deduplicate it. When the gateway has consumers configured, set the API key with \
            --api-key or BELAY_API_KEY (scopes webhooks:read, and webhooks:write to replay).

            Examples:
              belay webhooks list --source stripe --status dead
              belay webhooks show evt_0194f2a1c3b2…
              belay webhooks replay evt_0194f2a1c3b2…
            """,
        subcommands: [List.self, Show.self, Replay.self],
        defaultSubcommand: List.self
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List inbox events, newest first.")

        @OptionGroup var connection: Deliveries.Connection
        @Option(help: "Only this source's (webhooks.<source>).") var source: String?
        @Option(help: "Only events whose forward is: pending, in_flight, delivered, acknowledged, dead, cancelled.")
        var status: String?
        @Option(help: "How many (1–500).") var limit: Int = 50
        @Option(help: "Continue from a previous page's cursor.") var cursor: String?
        @Option(help: "text (a table) or json (the API's answer).") var format: Format = .text

        func validate() throws {
            guard (1...500).contains(limit) else { throw ValidationError("--limit must be from 1 to 500") }
        }

        func run() async throws {
            let path = ManagementClient.path(
                "/v1/webhooks/events",
                [("limit", String(limit)), ("source", source), ("status", status), ("cursor", cursor)]
            )
            let answer = try await connection.call { try await $0.get(path) }
            guard format == .text else { return print(String(decoding: answer.body, as: UTF8.self)) }
            print(WebhookTable.list(try connection.decode(WebhookEventPage.self, answer)))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one event, its forward and every attempt of the forward."
        )

        @OptionGroup var connection: Deliveries.Connection
        @Argument(help: "Belay's id of the event (evt_…), not the provider's.") var id: String
        @Option(help: "text or json (the API's answer).") var format: Format = .text

        func run() async throws {
            let path = "/v1/webhooks/events/" + ManagementClient.escaped(id)
            let answer = try await connection.call { try await $0.get(path) }
            guard format == .text else { return print(String(decoding: answer.body, as: UTF8.self)) }
            print(WebhookTable.show(try connection.decode(WebhookEventView.self, answer)))
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forward an event again now, with the same webhook-id (refused while its forward is unfinished)."
        )

        @OptionGroup var connection: Deliveries.Connection
        @Argument(help: "Belay's id of the event (evt_…).") var id: String

        func run() async throws {
            let path = "/v1/webhooks/events/\(ManagementClient.escaped(id))/replay"
            let answer = try await connection.call { try await $0.post(path) }
            print(WebhookTable.replayed(try connection.decode(WebhookReplay.self, answer)))
        }
    }
}
