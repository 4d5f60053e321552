import Foundation
import Testing

@testable import BelayStore

/// The built `belay` executable, beside the test binary in the products directory (nil: not
/// built). The command tests here and in StorageCopyCommandTests run it.
let builtBelayExecutable: URL? = {
    #if os(macOS)
    let products: URL? = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }?.bundleURL
        .deletingLastPathComponent()
    #else
    let products: URL? = Bundle.main.bundleURL
    #endif
    guard let url = products?.appendingPathComponent("belay"), FileManager.default.isExecutableFile(atPath: url.path)
    else { return nil }
    return url
}()

/// A run of the real binary: its exit status and what it printed.
struct CommandRun {
    var status: Int32
    var standardOutput: String
    var standardError: String
    var all: String { standardOutput + standardError }
}

/// Runs the built `belay` with `arguments` (and `extra` in its environment) to its end.
func runBelay(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> CommandRun {
    let process = Process()
    process.executableURL = builtBelayExecutable
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["BELAY_STORAGE_URL"] = nil
    process.environment = environment.merging(extra) { _, new in new }
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    let status = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    return CommandRun(
        status: status,
        standardOutput: String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
        standardError: String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    )
}

/// Whether the built `belay` is there to run.
let belayIsBuilt = builtBelayExecutable != nil

@Suite(
    .timeLimit(.minutes(1)),
    .enabled(if: belayIsBuilt, "the belay executable is built beside the tests by swift build / swift test")
)
struct StorageBackupCommandTests {
    @Test func aBackupBesideARunningGatewayIsCheckedAndRefusesToOverwrite() async throws {
        try await withFolder { folder in
            let path = folder + "/belay.db"
            // The gateway: it holds the database's lock for as long as the test runs.
            let running = try SQLiteStore(path: path)
            _ = try await running.insert((1...3).map { delivery("dlv_\($0)") })
            let copy = folder + "/copy.db"
            let first = try await runBelay(["storage", "backup", "--storage", "sqlite:\(path)", copy])
            #expect(first.status == 0, "\(first.all)")
            #expect(first.standardOutput.contains("backed up sqlite:\(path) to \(copy):"), "\(first.standardOutput)")
            #expect(first.standardOutput.contains("integrity ok"))
            #expect(first.standardOutput.contains("the copy holds 3 deliveries (3 pending), 0 webhook events"))
            #expect(first.standardError.isEmpty, "a small database is copied in one step, silently")

            let again = try await runBelay(["storage", "backup", "--storage", "sqlite:\(path)", copy])
            #expect(again.status == 2)
            #expect(again.standardError.contains("\(copy) exists; pass --force to replace it"))

            _ = try await running.insert([delivery("dlv_4")])
            let forced = try await runBelay(["storage", "backup", "--storage", "sqlite:\(path)", "--force", copy])
            #expect(forced.status == 0, "\(forced.all)")
            #expect(forced.standardOutput.contains("the copy holds 4 deliveries"))

            let check = try await runBelay(["storage", "check", "--storage", "sqlite:\(copy)"])
            #expect(check.status == 0, "\(check.all)")
            for line in ["integrity       ok", "foreign keys    ok", "deliveries      4: 4 pending", "healthy"] {
                #expect(check.standardOutput.contains(line), "\(line) in \(check.standardOutput)")
            }
            _ = running
        }
    }

    @Test func theConfigNamesTheStoreAndALargeCopyPrintsProgress() async throws {
        try await withFolder { folder in
            let path = folder + "/data/belay.db"
            do {
                let store = try SQLiteStore(path: path)
                // About 6 MiB: more than one step of 1,024 pages.
                let body = Data(repeating: UInt8(ascii: "z"), count: 60_000)
                _ = try await store.insert((1...100).map { delivery("dlv_\($0)", body: body) })
            }
            let config = folder + "/belay.yaml"
            try Data("storage: { url: \"sqlite:\(path)\" }\n".utf8).write(to: URL(fileURLWithPath: config))
            let copy = folder + "/copy.db"
            let run = try await runBelay(["storage", "backup", "--config", config, copy])
            #expect(run.status == 0, "\(run.all)")
            #expect(run.standardError.contains("copied 60% (1024 of "), "\(run.standardError)")
            #expect(run.standardError.contains("copied 100% ("), "\(run.standardError)")
            #expect(run.standardOutput.contains("the copy holds 100 deliveries"))
            // BELAY_STORAGE_URL names the store without a config.
            let check = try await runBelay(["storage", "check"], environment: ["BELAY_STORAGE_URL": "sqlite:\(copy)"])
            #expect(check.status == 0, "\(check.all)")
            #expect(check.standardOutput.contains("deliveries      100: 100 pending"))
        }
    }

    @Test func aDamagedStoreFailsTheCheckWithEachProblem() async throws {
        try await withFolder { folder in
            let garbage = folder + "/garbage.db"
            try Data(String(repeating: "no database here\n", count: 500).utf8).write(to: URL(fileURLWithPath: garbage))
            let damaged = try await runBelay(["storage", "check", "--storage", "sqlite:\(garbage)"])
            #expect(damaged.status == 1)
            #expect(damaged.standardOutput.contains("NOT HEALTHY: "), "\(damaged.standardOutput)")
            #expect(damaged.standardOutput.contains("not a database"), "\(damaged.standardOutput)")
            // The backup of a damaged file fails its check and leaves no copy.
            let copy = folder + "/copy.db"
            let backup = try await runBelay(["storage", "backup", "--storage", "sqlite:\(garbage)", copy])
            #expect(backup.status == 1, "\(backup.all)")
            #expect(!FileManager.default.fileExists(atPath: copy) || backup.standardError.contains("not sound"))

            let missing = try await runBelay(["storage", "check", "--storage", "sqlite:\(folder)/none.db"])
            #expect(missing.status == 2)
            #expect(missing.standardError.contains("there is no SQLite database at \(folder)/none.db"))
        }
    }

    @Test func aPostgreSQLStoreIsSentToPgDumpWithoutItsPassword() async throws {
        let url = "postgres://belay:hunter2@db.internal:5433/orders?sslmode=require&options=-c%20search_path%3Dbelay"
        let run = try await runBelay(["storage", "backup", "--storage", url, "/tmp/never-written.db"])
        #expect(run.status == 2)
        #expect(run.standardError.contains("the store is PostgreSQL; back it up with pg_dump"))
        #expect(
            run.standardError.contains(
                "pg_dump --format=custom --schema=belay --host=db.internal --port=5433 --username=belay --dbname=orders"
            ),
            "\(run.standardError)"
        )
        #expect(!run.all.contains("hunter2"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never-written.db"))

        let invalid = try await runBelay(["storage", "check", "--storage", "mysql://x"])
        #expect(invalid.status == 2)
        #expect(invalid.standardError.contains("--storage must be sqlite:<path> or postgres://"))
        let badConfig = try await runBelay(["storage", "check", "--config", "/nonexistent/belay.yaml"])
        #expect(badConfig.status == 2)
        #expect(badConfig.standardError.contains("cannot read /nonexistent/belay.yaml"))
    }

    private func delivery(_ id: String, body: Data? = nil) -> NewDelivery {
        let now = Date(timeIntervalSince1970: 1_750_000_000)
        return NewDelivery(
            id: id,
            upstream: "shop",
            method: "POST",
            path: "/orders",
            body: body,
            idempotencyKey: "key-\(id)",
            keyFromCaller: true,
            fingerprint: "fp",
            notBefore: now,
            createdAt: now
        )
    }

    private func withFolder(_ body: (String) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "belay-cli-backup-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try await body(folder.path)
    }
}
