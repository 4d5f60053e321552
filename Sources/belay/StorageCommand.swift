import ArgumentParser
import BelayStore
import Foundation
import Logging

struct Storage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back up, check or move a gateway's store.",
        discussion: """
            The store is the SQLite file or the PostgreSQL database that storage.url in the config \
            names: the delivery queue, the webhook inbox and the audit trail. backup and check \
            read it while the gateway keeps running; copy moves one gateway's SQLite history \
            into PostgreSQL once that gateway is stopped.

            Examples:
              belay storage backup --config belay.yaml /var/backups/belay/belay.db
              belay storage check --storage sqlite:/var/backups/belay/belay.db
              belay storage copy --from sqlite:./belay-data/belay.db --to postgres://…
            """,
        subcommands: [Backup.self, Check.self, Copy.self]
    )

    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy one gateway's SQLite history into PostgreSQL, to move up to several instances.",
            discussion: """
                Copies everything the gateway stored: its deliveries (with every attempt, their \
                statuses, leases, caller idempotency keys, ordering keys, consumers and \
                acknowledgements), its webhook inbox (the events and their body digests) and its \
                audit trail (with its size total). Ids are kept, and so is the order of the \
                deliveries of an ordering key and of the audit trail's pages.

                Stop the gateway first: the copy opens the SQLite file and takes its lock, so it \
                fails while a gateway still uses the file (and nothing writes while it reads). \
                The SQLite file is only read (an older Belay's is migrated first, as serve would); \
                keep it until the PostgreSQL gateways run.

                The target must be empty (a new database, or a new schema named with \
                options=-c%20search_path%3D<schema> in the URL); it is created and migrated. A \
                target holding anything that is not this SQLite database's is refused before \
                anything is written. Rows go in batches of --batch-size, one transaction each, \
                and each batch skips the rows already there (ON CONFLICT DO NOTHING): after an \
                interruption, run the same command again and it finishes the copy without \
                writing anything twice. If the gateway ran on SQLite again in between and \
                changed a copied row, the copy refuses; drop the target schema and start over.

                A delivery that was in flight is copied as pending, due at once, as a restart on \
                SQLite would leave it: the first instance on PostgreSQL sends it again.

                A progress line per table goes to standard error; at the end, each table's rows \
                in SQLite and in PostgreSQL are printed side by side. Then point storage.url at \
                PostgreSQL and start the gateways. The password is never printed; to keep it out \
                of the process list too, leave out --to and set BELAY_COPY_TO.

                Exit codes: 0 copied and every count matches, 1 anything else (the SQLite file \
                in use, the target refused, a read or write failed, a count differs; run it \
                again), 2 invalid arguments.

                Example:
                  belay storage copy --from sqlite:./belay-data/belay.db \\
                    --to 'postgres://belay:secret@db.internal:5432/belay?sslmode=verify-full'
                """
        )

        @Option(help: "The SQLite database, as in storage.url: sqlite:<path>.")
        var from: String

        @Option(help: "The PostgreSQL database, as in storage.url: postgres://… (default: $BELAY_COPY_TO).")
        var to: String?

        @Option(help: "Rows per transaction (1–2000).")
        var batchSize: Int = 1_000

        func validate() throws {
            guard from.hasPrefix("sqlite:"), from.count > "sqlite:".count else {
                throw ValidationError("--from must be sqlite:<path> (e.g. sqlite:./belay-data/belay.db).")
            }
            guard (1...2_000).contains(batchSize) else {
                throw ValidationError("--batch-size must be between 1 and 2000 (got \(batchSize)).")
            }
        }

        func run() async throws {
            let path = String(from.dropFirst("sqlite:".count))
            guard FileManager.default.fileExists(atPath: path) else {
                printError("belay storage copy: --from: there is no SQLite database at \(path)")
                throw ExitCode(2)
            }
            guard let url = to ?? ProcessInfo.processInfo.environment["BELAY_COPY_TO"], !url.isEmpty else {
                printError("belay storage copy: name the PostgreSQL database with --to or BELAY_COPY_TO")
                throw ExitCode(2)
            }
            let location: PostgresLocation
            do {
                location = try PostgresLocation(url: url)
            } catch {
                // The message names the URL with its password replaced.
                printError("belay storage copy: --to: \(error.message)")
                throw ExitCode(2)
            }
            let source: SQLiteStore
            do {
                source = try SQLiteStore(path: path)
            } catch {
                printError("belay storage copy: \(error) (stop the gateway first)")
                throw ExitCode(1)
            }
            var logger = Logger(label: "belay.storage.copy")
            logger.logLevel = .warning
            let target: PostgresStore
            do {
                target = try await PostgresStore.open(location, logger: logger)
            } catch {
                printError("belay storage copy: \(error)")
                throw ExitCode(1)
            }
            printError("copying sqlite:\(path) to \(location) (schema \(location.schema))")
            let report: StoreCopy.Report
            do {
                report = try await StoreCopy(
                    from: source,
                    to: target,
                    configuration: StoreCopy.Configuration(batchSize: batchSize)
                ).run { printError(CopyOutput.progressLine($0)) }
            } catch {
                await target.close()
                printError("belay storage copy: \(error)")
                throw ExitCode(1)
            }
            await target.close()
            print(CopyOutput.counts(report))
            guard report.matches else {
                printError("belay storage copy: the counts differ; run the copy again, or look into the tables above")
                throw ExitCode(1)
            }
            if report.released > 0 {
                print("\(report.released) delivery(ies) in flight were copied as pending, due at once.")
            }
            print("Copied. Set storage.url to the PostgreSQL URL (schema \(location.schema)) and start the gateways.")
        }
    }
}

/// The lines `belay storage copy` prints.
enum CopyOutput {
    /// One table's progress: `deliveries: 41000/100000 rows, 8210 rows/s`.
    static func progressLine(_ progress: StoreCopy.Progress) -> String {
        let rate = Int(progress.rowsPerSecond.rounded())
        let present = progress.present > 0 ? " (\(progress.present) already there)" : ""
        let seconds =
            Double(progress.elapsed.components.seconds)
            + Double(progress.elapsed.components.attoseconds) / 1e18
        let time = progress.isFinished ? " done in \(String(format: "%.1f", seconds)) s," : ""
        return "\(progress.table.rawValue): \(progress.done)/\(progress.total) rows\(present),\(time) \(rate) rows/s"
    }

    /// The final check: each table's rows in SQLite and in PostgreSQL.
    static func counts(_ report: StoreCopy.Report) -> String {
        let width = max(report.counts.map(\.name.count).max() ?? 0, 5)
        func pad(_ text: String, _ count: Int, left: Bool = false) -> String {
            let padding = String(repeating: " ", count: max(count - text.count, 0))
            return left ? padding + text : text + padding
        }
        var lines = [
            pad("table", width) + "  " + pad("sqlite", 12, left: true) + "  " + pad("postgres", 12, left: true)
        ]
        for count in report.counts {
            lines.append(
                pad(count.name, width) + "  " + pad(String(count.source), 12, left: true) + "  "
                    + pad(String(count.target), 12, left: true) + (count.matches ? "  ok" : "  DIFFERENT")
            )
        }
        return lines.joined(separator: "\n")
    }
}
