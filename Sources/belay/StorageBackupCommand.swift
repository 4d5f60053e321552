import ArgumentParser
import BelayGateway
import BelayStore
import Foundation
import Synchronization

extension Storage {
    struct Backup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a SQLite store into a new file, consistently, while the gateway keeps running.",
            discussion: """
                The copy is taken with SQLite's online backup API from one read snapshot: it holds \
                every delivery, webhook event and audit record committed before the backup began, \
                and nothing half-written. The gateway goes on accepting and delivering meanwhile \
                (in WAL mode a reader never blocks the writer); only its write-ahead log grows \
                until the copy ends. There is no need to stop the gateway, and no lock is taken \
                that it holds.

                The copy is written to a hidden file beside <file>, synced to the disk, then moved \
                to <file> in one step, so <file> is either the whole copy or absent. An existing \
                <file> is refused unless --force is given. A progress line goes to standard error \
                every tenth of a large database. Afterwards the copy's integrity is checked (skip \
                that with --no-verify) and what it holds is printed.

                To restore: stop the gateway, move the database file and its -wal and -shm files \
                aside, put the copy in their place under the database's name, run belay storage \
                check, then start the gateway.

                A PostgreSQL store is backed up with pg_dump instead; this command says how and \
                exits 2.

                Exit codes: 0 copied (and verified), 1 the copy or its check failed, 2 invalid \
                arguments (a file there already, no such database, a PostgreSQL store).

                Examples:
                  belay storage backup -c /etc/belay/belay.yaml /var/backups/belay.db
                  belay storage backup --storage sqlite:./belay-data/belay.db --force nightly.db
                """
        )

        @OptionGroup var store: StoreSelection

        @Flag(help: "Replace <file> if it exists.")
        var force = false

        @Flag(inversion: .prefixedNo, help: "Check the copy's integrity once it is written.")
        var verify = true

        @Argument(help: "The file to write the copy to; its folder must exist.")
        var file: String

        func run() async throws {
            let path: String
            switch try store.resolve("storage backup") {
            case .sqlite(let sqlitePath):
                path = sqlitePath
            case .postgres(let url):
                printError(Self.postgresAdvice(url.value))
                throw ExitCode(2)
            }
            guard FileManager.default.fileExists(atPath: path) else {
                printError("belay storage backup: there is no SQLite database at \(path)")
                throw ExitCode(2)
            }
            if !force, FileManager.default.fileExists(atPath: file) {
                printError("belay storage backup: \(file) exists; pass --force to replace it")
                throw ExitCode(2)
            }
            let started = ContinuousClock.now
            let reporter = BackupReporter()
            let copied: BackupProgress
            do {
                copied = try await SQLiteStore.backup(databaseAt: path, to: file, replacing: force) {
                    reporter.report($0)
                }
            } catch {
                printError("belay storage backup: \(error)")
                throw ExitCode(1)
            }
            let elapsed = ContinuousClock.now - started
            var summary =
                "backed up sqlite:\(path) to \(file): \(BackupReporter.size(copied.bytes)) "
                + "(\(copied.pageCount) pages) in \(BackupReporter.seconds(elapsed)) s"
            if verify {
                let check: StoreCheck
                do {
                    check = try SQLiteStore.check(databaseAt: file)
                } catch {
                    printError("belay storage backup: the copy cannot be checked: \(error)")
                    throw ExitCode(1)
                }
                let damage =
                    (check.integrity ?? []).map { "integrity: \($0)" }
                    + (check.foreignKeys ?? []).map { "foreign key: \($0)" }
                    + check.failures
                guard damage.isEmpty else {
                    printError("belay storage backup: the copy at \(file) is not sound:")
                    for line in damage { printError("  \(line)") }
                    throw ExitCode(1)
                }
                summary += "; integrity ok"
                print(summary)
                print("the copy holds \(CheckOutput.holdings(check))")
            } else {
                print(summary)
            }
        }

        /// What to do instead for a PostgreSQL store: a pg_dump command for its schema (no password).
        static func postgresAdvice(_ url: String) -> String {
            let intro = "belay storage backup: the store is PostgreSQL; back it up with pg_dump, not this command"
            guard let location = try? PostgresLocation(url: url) else { return intro + " (docs/deployment.md)" }
            let host = location.unixSocketPath.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
            return intro
                + ", e.g.:\n  pg_dump --format=custom --schema=\(location.schema) --host=\(host ?? location.host) "
                + "--port=\(location.port) --username=\(location.user) --dbname=\(location.database) "
                + "--file=belay-$(date +%F).dump\n(the password from PGPASSWORD or ~/.pgpass; docs/deployment.md, Backups)"
        }
    }
}

/// Prints the progress of a backup to standard error: a line each time another tenth of a
/// database copied in several steps is done (a small one is copied in one step, silently).
final class BackupReporter: Sendable {
    /// The last tenth printed.
    private let printed = Mutex(0)

    func report(_ progress: BackupProgress) {
        guard progress.pageCount > 0, !(progress.isFinished && printed.withLock({ $0 }) == 0) else { return }
        let tenth = progress.pagesCopied * 10 / progress.pageCount
        let due = printed.withLock { last in
            guard tenth > last else { return false }
            last = tenth
            return true
        }
        guard due else { return }
        printError(
            "copied \(tenth * 10)% (\(progress.pagesCopied) of \(progress.pageCount) pages, "
                + "\(Self.size(progress.pagesCopied * progress.pageSize)) of \(Self.size(progress.bytes)))"
        )
    }

    /// A size in words: `812 KiB`, `4.2 MiB`, `1.3 GiB`.
    static func size(_ bytes: Int) -> String {
        let value = Double(bytes)
        if value >= 1_073_741_824 { return String(format: "%.1f GiB", value / 1_073_741_824) }
        if value >= 1_048_576 { return String(format: "%.1f MiB", value / 1_048_576) }
        return "\(max(bytes / 1_024, 1)) KiB"
    }

    /// A duration in seconds with one decimal.
    static func seconds(_ duration: Duration) -> String {
        let components = duration.components
        return String(format: "%.1f", Double(components.seconds) + Double(components.attoseconds) / 1e18)
    }
}
