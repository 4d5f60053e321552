import ArgumentParser
import BelayGateway
import BelayStore
import Foundation
import Logging

extension Storage {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a store: its integrity, its schema version and what it holds.",
            discussion: """
                On SQLite: runs SQLite's integrity check and foreign key check over the whole file, \
                compares the migrations it was given with those this Belay applies, and counts the \
                deliveries in each status, the webhook events and the audit records. The file is \
                opened read only, without the gateway's lock, so the check runs beside a running \
                gateway, or on a backup before it is restored.

                On PostgreSQL: compares the migrations and counts the rows, in the schema the URL \
                names; PostgreSQL checks its own pages (see its amcheck module).

                A missing migration means an older Belay made the store (belay serve applies it when \
                it starts); an unknown one means a newer Belay migrated it: run that version or \
                newer, or restore a backup taken before the upgrade.

                Exit codes: 0 healthy, 1 a problem found (each one is printed) or the store cannot \
                be read, 2 invalid arguments.

                Examples:
                  belay storage check --config /etc/belay/belay.yaml
                  belay storage check --storage sqlite:/var/backups/belay/belay.db
                """
        )

        @OptionGroup var store: StoreSelection

        func run() async throws {
            let check: StoreCheck
            do {
                switch try store.resolve("storage check") {
                case .sqlite(let path):
                    guard FileManager.default.fileExists(atPath: path) else {
                        printError("belay storage check: there is no SQLite database at \(path)")
                        throw ExitCode(2)
                    }
                    check = try SQLiteStore.check(databaseAt: path)
                case .postgres(let url):
                    var logger = Logger(label: "belay.storage.check")
                    logger.logLevel = .warning
                    check = try await PostgresStore.check(PostgresLocation(url: url.value), logger: logger)
                }
            } catch let error as StoreError {
                printError("belay storage check: \(error)")
                throw ExitCode(1)
            }
            print(CheckOutput.report(check))
            guard check.isHealthy else { throw ExitCode(1) }
        }
    }
}

/// The lines `belay storage check` prints.
enum CheckOutput {
    /// The whole report: one line per part, then the verdict and each problem.
    static func report(_ check: StoreCheck) -> String {
        var lines: [(String, String)] = [("store", check.store)]
        lines.append(("integrity", check.integrity.map { $0.isEmpty ? "ok" : "\($0.count) problem(s)" } ?? notChecked))
        lines.append(
            ("foreign keys", check.foreignKeys.map { $0.isEmpty ? "ok" : "\($0.count) problem(s)" } ?? notChecked)
        )
        lines.append(("migrations", migrations(check)))
        lines.append(
            ("deliveries", check.deliveries.map { "\($0.values.reduce(0, +)): \(deliveries($0))" } ?? "not counted")
        )
        lines.append(("webhook events", check.webhookEvents.map(String.init) ?? "not counted"))
        lines.append(("audit records", check.auditRecords.map(String.init) ?? "not counted"))
        let width = lines.map(\.0.count).max() ?? 0
        var text = lines.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }
        let problems = check.problems
        if problems.isEmpty {
            text.append("healthy")
        } else {
            text.append("NOT HEALTHY: \(problems.count) problem(s)")
            text.append(contentsOf: problems.map { "  " + $0 })
        }
        return text.joined(separator: "\n")
    }

    /// What the store holds, in one line: `12 deliveries (…), 3 webhook events, 40 audit records`.
    static func holdings(_ check: StoreCheck) -> String {
        let total = check.deliveries.map { $0.values.reduce(0, +) }
        return "\(total.map(String.init) ?? "?") deliveries"
            + (check.deliveries.map { $0.isEmpty ? "" : " (\(deliveries($0)))" } ?? "")
            + ", \(check.webhookEvents.map(String.init) ?? "?") webhook events, "
            + "\(check.auditRecords.map(String.init) ?? "?") audit records"
    }

    private static let notChecked = "not checked (PostgreSQL checks its own pages)"

    private static func migrations(_ check: StoreCheck) -> String {
        let expected = check.expectedMigrations.count
        let applied = check.appliedMigrations.count - check.unknownMigrations.count
        var text = "\(applied) of \(expected) applied"
        if let last = check.appliedMigrations.last { text += ", latest \(last)" }
        if !check.missingMigrations.isEmpty { text += "; missing \(check.missingMigrations.joined(separator: ", "))" }
        if !check.unknownMigrations.isEmpty { text += "; unknown \(check.unknownMigrations.joined(separator: ", "))" }
        return text
    }

    private static func deliveries(_ counts: [DeliveryStatus: Int]) -> String {
        let parts = DeliveryStatus.allCases.compactMap { status in counts[status].map { "\($0) \(status.rawValue)" } }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }
}
