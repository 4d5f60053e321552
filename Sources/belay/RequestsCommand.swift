import ArgumentParser
import BelayAPI
import BelayClient
import BelayGateway
import Foundation

struct Requests: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List and show the audit trail of a running gateway's proxied requests.",
        discussion: """
            Talks to a running belay serve over its management API (/v1/requests). With \
            audit.enabled (the default) every proxied request is recorded with each attempt \
            (endpoint, status or failure, timing) and each decision (retry, failover, breaker, \
            stale answer), for audit.retention (7 days by default). The id is the request's \
            Belay-Request-Id. A consumer without admin sees only its own requests. When the \
            gateway has consumers configured, set the API key with --api-key or BELAY_API_KEY \
            (scope requests:read).

            Examples:
              belay requests list --upstream payments --outcome server_error
              belay requests list --since 15m
              belay requests list --correlation-id order-42
              belay requests show 01936f3e-8c2a-7b4d-9e1f-2a3b4c5d6e7f
            """,
        subcommands: [List.self, Show.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List proxied requests, newest first.")

        @OptionGroup var connection: Deliveries.Connection
        @Option(help: "Only this upstream's.") var upstream: String?
        @Option(
            help: "Only this outcome: success, client_error, server_error, stale, fallback, queued, or a problem code."
        )
        var outcome: String?
        @Option(help: "Only requests received since then: an RFC 3339 date-time, or a duration back (15m, 2h).")
        var since: String?
        @Option(help: "Only the request the caller sent with this X-Request-Id.") var correlationID: String?
        @Option(help: "How many (1–500).") var limit: Int = 50
        @Option(help: "Continue from a previous page's cursor.") var cursor: String?
        @Option(help: "text (a table) or json (the API's answer).") var format: Webhooks.Format = .text

        func validate() throws {
            guard (1...500).contains(limit) else { throw ValidationError("--limit must be from 1 to 500") }
        }

        func run() async throws {
            let path = ManagementClient.path(
                "/v1/requests",
                [
                    ("limit", String(limit)), ("upstream", upstream), ("outcome", outcome), ("since", since),
                    ("correlation_id", correlationID), ("cursor", cursor),
                ]
            )
            let answer = try await connection.call { try await $0.get(path) }
            guard format == .text else { return print(String(decoding: answer.body, as: UTF8.self)) }
            print(RequestTable.list(try connection.decode(AuditRequestPage.self, answer)))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one request's attempts and decisions: why it was answered as it was."
        )

        @OptionGroup var connection: Deliveries.Connection
        @Argument(help: "The request's id (its Belay-Request-Id).") var id: String
        @Option(help: "text or json (the API's answer).") var format: Webhooks.Format = .text

        func run() async throws {
            let path = "/v1/requests/" + ManagementClient.escaped(id)
            let answer = try await connection.call { try await $0.get(path) }
            guard format == .text else { return print(String(decoding: answer.body, as: UTF8.self)) }
            print(RequestTable.show(try connection.decode(AuditRequestView.self, answer)))
        }
    }
}
