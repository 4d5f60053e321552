import Foundation
import Logging
import PostgresNIO
import Testing

@testable import BelayStore

private let environment = ProcessInfo.processInfo.environment
private let postgresConfigured = environment["POSTGRES_HOSTNAME"].map { !$0.isEmpty } ?? false

@Suite(
    .timeLimit(.minutes(1)),
    .enabled(
        if: builtBelayExecutable != nil,
        "the belay executable is built beside the tests by swift build / swift test"
    )
)
struct StorageCopyCommandTests {
    private struct Run {
        var status: Int32
        var standardOutput: String
        var standardError: String
        var all: String { standardOutput + standardError }
    }

    private func belay(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> Run {
        let process = Process()
        process.executableURL = builtBelayExecutable
        process.arguments = arguments
        process.environment = environment.merging(extra) { _, new in new }
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        let status = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<Int32, any Error>) in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        return Run(
            status: status,
            standardOutput: String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            standardError: String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        )
    }

    @Test func theHelpTeachesWhatIsCopiedAndWhatItNeeds() async throws {
        let run = try await belay(["storage", "copy", "--help"])
        #expect(run.status == 0)
        for phrase in [
            "webhook inbox", "audit trail", "Stop the gateway first", "must be empty", "ON CONFLICT DO NOTHING",
            "in flight", "Exit codes: 0",
        ] {
            #expect(run.standardOutput.contains(phrase), "\(phrase)")
        }
    }

    @Test func aSourceThatIsNotAnSQLiteFileExits2() async throws {
        let notSQLite = try await belay(["storage", "copy", "--from", "./belay.db", "--to", "postgres://u@h/d"])
        #expect(notSQLite.status == 2)
        #expect(notSQLite.standardError.contains("--from must be sqlite:<path>"))
        let missing = try await belay([
            "storage", "copy", "--from", "sqlite:/nonexistent/belay.db", "--to", "postgres://u@h/d",
        ])
        #expect(missing.status == 2)
        #expect(missing.standardError.contains("there is no SQLite database at /nonexistent/belay.db"))
    }

    @Test func aTargetURLBelayCannotUseExits2WithoutItsPassword() async throws {
        try await withSQLite { path in
            let run = try await belay([
                "storage", "copy", "--from", "sqlite:\(path)", "--to", "postgres://u:hunter2@h/d?sslmode=maybe",
            ])
            #expect(run.status == 2)
            #expect(run.standardError.contains("sslmode 'maybe'"))
            #expect(!run.all.contains("hunter2"))
        }
    }

    @Test(
        .enabled(
            if: postgresConfigured,
            "PostgreSQL not configured: set POSTGRES_HOSTNAME and the other POSTGRES_* variables"
        )
    )
    func aCopyPrintsProgressAndTheCountsAndARunAgainCopiesNothing() async throws {
        try await withSQLite { path in
            try await withSchema { url, password in
                let first = try await belay(
                    ["storage", "copy", "--from", "sqlite:\(path)"],
                    environment: ["BELAY_COPY_TO": url]
                )
                #expect(first.status == 0, "\(first.all)")
                #expect(first.standardError.contains("deliveries: 3/3 rows, done in"), "\(first.standardError)")
                #expect(first.standardError.contains("audit_requests: 2/2 rows, done in"))
                #expect(first.standardOutput.contains("deliveries"))
                #expect(first.standardOutput.contains("ok"))
                #expect(!first.standardOutput.contains("DIFFERENT"))
                #expect(first.standardOutput.contains("1 delivery(ies) in flight were copied as pending"))
                #expect(!first.all.contains(password))
                let again = try await belay(["storage", "copy", "--from", "sqlite:\(path)", "--to", url])
                #expect(again.status == 0, "\(again.all)")
                #expect(
                    again.standardError.contains("deliveries: 3/3 rows (3 already there)"),
                    "\(again.standardError)"
                )
                #expect(!again.all.contains(password))
            }
        }
    }

    @Test(
        .enabled(
            if: postgresConfigured,
            "PostgreSQL not configured: set POSTGRES_HOSTNAME and the other POSTGRES_* variables"
        )
    )
    func aWrongPasswordOrAFileInUseExits1WithTheReason() async throws {
        try await withSQLite { path in
            try await withSchema { url, password in
                let wrong = url.replacingOccurrences(of: ":\(password)@", with: ":not-\(password)-either@")
                let refused = try await belay(["storage", "copy", "--from", "sqlite:\(path)", "--to", wrong])
                #expect(refused.status == 1)
                #expect(refused.standardError.contains("password authentication failed"), "\(refused.standardError)")
                #expect(!refused.all.contains(password))
                // A gateway still running on the file: the lock refuses the copy.
                let running = try SQLiteStore(path: path)
                let inUse = try await belay(["storage", "copy", "--from", "sqlite:\(path)", "--to", url])
                #expect(inUse.status == 1)
                #expect(inUse.standardError.contains("another process is using the SQLite database"))
                #expect(inUse.standardError.contains("stop the gateway first"))
                _ = running
            }
        }
    }

    /// A SQLite file with three deliveries (one in flight) and two audit records, closed again.
    private func withSQLite(_ body: (String) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "belay-cli-copy-\(UUID().uuidString)"
        )
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("belay.db").path
        do {
            let store = try SQLiteStore(path: path)
            let now = Date(timeIntervalSince1970: 1_750_000_000)
            _ = try await store.insert(
                (1...3).map { number in
                    NewDelivery(
                        id: "dlv_cli_\(number)",
                        upstream: "shop",
                        method: "POST",
                        path: "/orders",
                        idempotencyKey: "key-\(number)",
                        keyFromCaller: true,
                        fingerprint: "fp",
                        notBefore: now,
                        createdAt: now
                    )
                }
            )
            _ = try await store.claim(
                limits: ["shop": 1],
                now: now,
                leaseUntil: now.addingTimeInterval(30),
                owner: "gw"
            )
            try await store.insertAudit(
                (1...2).map {
                    AuditRecord(
                        requestID: "req_\($0)",
                        upstream: "shop",
                        method: "GET",
                        path: "/",
                        receivedAt: now,
                        durationMilliseconds: 1,
                        status: 200,
                        outcome: "ok"
                    )
                }
            )
        }
        try await body(path)
    }

    /// The URL of a fresh schema of the test database (and its password), dropped afterwards.
    private func withSchema(_ body: (String, String) async throws -> Void) async throws {
        let user = environment["POSTGRES_USER"] ?? "postgres"
        let password = try #require(environment["POSTGRES_PASSWORD"], "the tests' role has a password")
        let host = environment["POSTGRES_HOSTNAME"] ?? "localhost"
        let port = environment["POSTGRES_PORT"] ?? "5432"
        let database = environment["POSTGRES_DB"] ?? user
        let schema = "belay_cli_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
        func encoded(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
        }
        let url =
            "postgres://\(encoded(user)):\(encoded(password))@\(host):\(port)/\(encoded(database))"
            + "?sslmode=disable&pool_size=3&options=-c%20search_path%3D\(schema)"
        do {
            try await body(url, encoded(password))
        } catch {
            try? await drop(schema, url: url)
            throw error
        }
        try await drop(schema, url: url)
    }

    /// Drops `schema` over a store of its own (which creates it first if the copy did not).
    private func drop(_ schema: String, url: String) async throws {
        let store = try await PostgresStore.open(PostgresLocation(url: url), logger: Logger(label: "belay.test"))
        do {
            _ = try await store.reading("drop the test schema") { connection in
                try await connection.run(
                    PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"),
                    logger: store.logger
                )
            }
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }
}
