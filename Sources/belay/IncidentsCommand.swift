import ArgumentParser
import BelayAPI
import BelayClient
import BelayGateway
import Foundation

struct Incidents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List and show a running gateway's incidents, or draft a postmortem.",
        discussion: """
            Talks to a running belay serve over its management API (GET /v1/incidents). Belay \
            opens an incident when an upstream turns down, degraded or stale, or burns its error \
            budget fast, and closes it once the upstream has been healthy for incidents.close_after \
            (5 minutes by default). Each \
            one has a timeline (first failure, detected, breaker opened, first stale answer, \
            probes, recovered), its impact on callers, and the time to detect and to recover. \
            With PostgreSQL every instance sees the same incidents. When the gateway has \
            consumers configured, set the API key with --api-key or BELAY_API_KEY (scope \
            upstreams:read).

            Examples:
              belay incidents list
              belay incidents list --upstream payments --status open
              belay incidents show inc_0192…
              belay incidents show inc_0192… --format markdown > postmortem.md
            """,
        subcommands: [List.self, Show.self],
        defaultSubcommand: List.self
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json, markdown
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List incidents, newest first.")

        @OptionGroup var connection: Deliveries.Connection
        @Option(help: "Only this upstream's.") var upstream: String?
        @Option(help: "Only open or only closed ones.") var status: String?
        @Option(help: "How many (1–200).") var limit: Int = 20
        @Option(help: "Continue from a previous page's cursor.") var cursor: String?
        @Option(help: "text (a table) or json (the API's answer).") var format: Format = .text

        func validate() throws {
            guard (1...200).contains(limit) else { throw ValidationError("--limit must be from 1 to 200") }
            if let status, !["open", "closed"].contains(status) {
                throw ValidationError("--status must be open or closed (got '\(status)')")
            }
            if format == .markdown {
                throw ValidationError("--format markdown is for one incident: belay incidents show ID")
            }
        }

        func run() async throws {
            let path = ManagementClient.path(
                "/v1/incidents",
                [("limit", String(limit)), ("upstream", upstream), ("status", status), ("cursor", cursor)]
            )
            let answer = try await connection.call { try await $0.get(path) }
            guard format == .text else {
                print(String(decoding: answer.body, as: UTF8.self))
                return
            }
            let page = try Incidents.decode(IncidentListJSON.self, answer.body)
            print(IncidentTable.list(page))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one incident's timeline and impact, or its postmortem draft (--format markdown)."
        )

        @OptionGroup var connection: Deliveries.Connection
        @Argument(help: "The incident's id (inc_…).") var id: String
        @Option(help: "text, json, or markdown (a postmortem draft with the timeline and numbers filled in).")
        var format: Format = .text

        func run() async throws {
            let path = "/v1/incidents/" + ManagementClient.escaped(id)
            let answer = try await connection.call { try await $0.get(path) }
            if format == .json {
                print(String(decoding: answer.body, as: UTF8.self))
                return
            }
            let incident = try Incidents.decode(IncidentJSON.self, answer.body)
            print(format == .markdown ? Postmortem.markdown(incident) : IncidentTable.show(incident))
        }
    }

    /// Decodes the gateway's answer; one that does not read is reported, exit 1.
    static func decode<T: Decodable>(_ type: T.Type, _ body: Data) throws -> T {
        do {
            return try ManagementJSON.decoder().decode(type, from: body)
        } catch {
            printError("the gateway's answer is not an incident as this belay reads it: \(error)")
            throw ExitCode(1)
        }
    }
}
