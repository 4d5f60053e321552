import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How far a backup is: pages copied of the database's pages.
public struct BackupProgress: Sendable, Hashable {
    /// Pages copied so far.
    public var pagesCopied: Int
    /// The pages of the database being copied (as of the backup's snapshot).
    public var pageCount: Int
    /// Bytes per page.
    public var pageSize: Int
    /// Whether every page is copied.
    public var isFinished: Bool

    /// Creates a progress report.
    public init(pagesCopied: Int, pageCount: Int, pageSize: Int, isFinished: Bool) {
        self.pagesCopied = pagesCopied
        self.pageCount = pageCount
        self.pageSize = pageSize
        self.isFinished = isFinished
    }

    /// The database's size in bytes.
    public var bytes: Int { pageCount * pageSize }
}

/// `belay storage backup`: a consistent copy of a live database with SQLite's online backup API.
///
/// The copy is one read transaction's snapshot (WAL): it holds every commit made before the
/// backup began and nothing after, and writers go on committing while it runs (readers never
/// block the writer in WAL mode). The only cost to a running gateway: the write-ahead log
/// cannot be checkpointed past the snapshot until the backup ends, so it grows meanwhile.
///
/// The copy is written to a hidden file beside `target`, synced, then moved to `target` in one
/// step: `target` is never a half-written database, and an interrupted backup leaves no file.
extension SQLiteStore {
    /// Pages copied per step by default (4 MiB at SQLite's 4 KiB pages): the progress
    /// callback's granularity.
    public static let backupPagesPerStep = 1_024

    /// Copies this store's database into a new SQLite file at `target`.
    ///
    /// - Parameters:
    ///   - replacing: whether an existing file at `target` may be replaced (default false:
    ///     ``StoreError/Code/refused``).
    ///   - pagesPerStep: pages copied between two `progress` calls.
    ///   - progress: called after each step, and once finished.
    /// - Returns: the final progress: the copy's page count and size.
    @discardableResult
    public func backup(
        to target: String,
        replacing: Bool = false,
        pagesPerStep: Int = SQLiteStore.backupPagesPerStep,
        progress: (@Sendable (BackupProgress) -> Void)? = nil
    ) async throws(StoreError) -> BackupProgress {
        try await Self.backup(
            from: pool,
            at: path,
            to: target,
            replacing: replacing,
            pagesPerStep: pagesPerStep,
            progress: progress
        )
    }

    /// Copies the SQLite database at `source` into a new file at `target` without opening it
    /// as a store: read only, without the lock a running gateway holds, so it runs beside
    /// `belay serve` (see ``backup(to:replacing:pagesPerStep:progress:)``).
    @discardableResult
    public static func backup(
        databaseAt source: String,
        to target: String,
        replacing: Bool = false,
        pagesPerStep: Int = SQLiteStore.backupPagesPerStep,
        progress: (@Sendable (BackupProgress) -> Void)? = nil
    ) async throws(StoreError) -> BackupProgress {
        let database = try openReadOnly(source)
        return try await backup(
            from: database,
            at: source,
            to: target,
            replacing: replacing,
            pagesPerStep: pagesPerStep,
            progress: progress
        )
    }

    private static func backup(
        from reader: some DatabaseReader,
        at source: String,
        to target: String,
        replacing: Bool,
        pagesPerStep: Int,
        progress: (@Sendable (BackupProgress) -> Void)?
    ) async throws(StoreError) -> BackupProgress {
        let targetURL = URL(fileURLWithPath: target)
        guard !sameFile(source, target) else {
            throw StoreError(.refused, "\(target) is the database being backed up")
        }
        guard replacing || !FileManager.default.fileExists(atPath: target) else {
            throw StoreError(.refused, "there is a file at \(target) already")
        }
        let folder = targetURL.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: folder) else {
            throw StoreError(.open, "there is no folder \(folder) to write \(target) in")
        }
        // Beside the target, so that the final rename stays on one file system.
        let temporary =
            targetURL.deletingLastPathComponent()
            .appendingPathComponent(".\(targetURL.lastPathComponent).\(UUID().uuidString.prefix(8)).partial").path
        defer {
            for suffix in ["", "-journal", "-wal", "-shm"] { unlink(temporary + suffix) }
        }
        let last = try await copyPages(from: reader, to: temporary, pagesPerStep: pagesPerStep, progress: progress)
        try syncFile(temporary)
        try moveInPlace(temporary, to: target, replacing: replacing)
        try syncFile(folder)
        return last
    }

    /// Copies every page of `reader`'s database into a new database at `path`, in steps of
    /// `pagesPerStep`, inside one read transaction (the snapshot).
    private static func copyPages(
        from reader: some DatabaseReader,
        to path: String,
        pagesPerStep: Int,
        progress: (@Sendable (BackupProgress) -> Void)?
    ) async throws(StoreError) -> BackupProgress {
        var configuration = Configuration()
        configuration.label = "belay-backup"
        let destination: DatabaseQueue
        do {
            destination = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw StoreError(.open, "cannot create the backup file \(path)", underlying: error)
        }
        let step = CInt(clamping: max(pagesPerStep, 1))
        let result: Result<BackupProgress, StoreError>
        do {
            let last = try await destination.writeWithoutTransaction { target in
                try reader.read { source in
                    // The first read starts the transaction whose snapshot is copied: every
                    // step reads that one snapshot, so writes committed meanwhile neither
                    // restart the copy nor appear in it.
                    _ = try Int.fetchOne(source, sql: "SELECT COUNT(*) FROM sqlite_master")
                    let pageSize = try Int.fetchOne(source, sql: "PRAGMA page_size") ?? 4_096
                    var last = BackupProgress(pagesCopied: 0, pageCount: 0, pageSize: pageSize, isFinished: false)
                    try source.backup(to: target, pagesPerStep: step) { state in
                        last = BackupProgress(
                            pagesCopied: state.completedPageCount,
                            pageCount: state.totalPageCount,
                            pageSize: pageSize,
                            isFinished: state.isCompleted
                        )
                        progress?(last)
                    }
                    return last
                }
            }
            result = .success(last)
        } catch {
            result = .failure(StoreError(.io, "cannot copy the database into \(path)", underlying: error))
        }
        do {
            try destination.close()
        } catch {
            throw StoreError(.io, "cannot close the backup file \(path)", underlying: error)
        }
        return try result.get()
    }

    /// Whether `a` and `b` name one file (both exist and share a device and an inode).
    private static func sameFile(_ a: String, _ b: String) -> Bool {
        var first = stat()
        var second = stat()
        guard stat(a, &first) == 0, stat(b, &second) == 0 else { return false }
        return first.st_dev == second.st_dev && first.st_ino == second.st_ino
    }

    /// Moves `temporary` to `target` in one step. Without `replacing`, a hard link that fails
    /// if `target` appeared meanwhile, then the temporary name removed; with it, a rename.
    private static func moveInPlace(_ temporary: String, to target: String, replacing: Bool) throws(StoreError) {
        if replacing {
            guard rename(temporary, target) == 0 else {
                throw StoreError(.io, "cannot move the backup to \(target) (\(String(cString: strerror(errno))))")
            }
        } else {
            guard link(temporary, target) == 0 else {
                let reason = errno == EEXIST ? "a file appeared there meanwhile" : String(cString: strerror(errno))
                throw StoreError(.refused, "cannot move the backup to \(target): \(reason)")
            }
            unlink(temporary)
        }
    }

    /// Flushes `path` (a file, or a folder after a rename in it) to the disk.
    private static func syncFile(_ path: String) throws(StoreError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw StoreError(.io, "cannot open \(path) to sync it (\(String(cString: strerror(errno))))")
        }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else {
            throw StoreError(.io, "cannot sync \(path) to the disk (\(String(cString: strerror(errno))))")
        }
    }
}
