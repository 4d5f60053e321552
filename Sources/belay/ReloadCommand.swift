import ArgumentParser
import BelayAPI
import BelayClient
import BelayGateway
import Foundation

struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a running gateway re-read its config file, as SIGHUP does.",
        discussion: """
            Calls POST /v1/admin/reload on a running belay serve. The gateway re-reads the file \
            it was started with: a valid config takes effect for new requests (upstream \
            policies, consumers and keys, the TLS certificate) while requests in flight finish \
            under the old one. An invalid config is refused and the running one kept; every \
            problem is printed with its key path. Settings that need a restart (server.listen, \
            storage, an upstream added or removed, …) are printed too and keep their running \
            values.

            When the gateway has consumers configured, set the API key with --api-key or \
            BELAY_API_KEY (scope admin).

            Exit codes: 0 applied, 1 refused or the gateway could not be reached, 2 invalid \
            arguments.

            Examples:
              belay reload
              belay reload --url https://belay.internal:8443
            """
    )

    @OptionGroup var connection: Deliveries.Connection

    func run() async throws {
        let answer: ManagementClient.Answer
        do {
            answer = try await connection.client.post("/v1/admin/reload")
        } catch {
            printError("cannot reach the gateway at \(connection.url): \(error)")
            throw ExitCode(1)
        }
        switch answer.status {
        case 200:
            let outcome = try connection.decode(ReloadOutcomeView.self, answer)
            print(
                outcome.applied.isEmpty
                    ? "Reloaded: nothing changed that can change without a restart."
                    : "Reloaded: \(outcome.applied.joined(separator: ", ")) now in effect for new requests."
            )
            if !outcome.needsRestart.isEmpty {
                print("Needs a restart (kept as running): \(outcome.needsRestart.joined(separator: ", "))")
            }
        case 422:
            let refusal = try connection.decode(ReloadRefusal.self, answer)
            printError("Refused: the config has \(refusal.problems.count) problem(s); the running config is kept.")
            for problem in refusal.problems {
                let line = problem.line.map { "line \($0): " } ?? ""
                let path = problem.path.isEmpty ? "(root)" : problem.path
                printError("  \(line)\(path): \(problem.message)")
            }
            throw ExitCode(1)
        default:
            printError(answer.problemSummary)
            throw ExitCode(1)
        }
    }
}
