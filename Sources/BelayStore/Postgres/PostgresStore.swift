import Foundation
public import Logging
import NIOSSL
import PostgresNIO
import Synchronization

/// The shared store: one PostgreSQL database that several gateway instances use at once.
///
/// Open it with ``open(_:logger:clock:)``, which connects and migrates (under an advisory
/// lock, so instances starting together migrate once), and ``close()`` it at the end.
///
/// - Durability: every write commits with the server's `synchronous_commit` (on by
///   default: the commit is on disk before it returns). Concurrent accepts share one
///   transaction through ``DeliveryIntake``.
/// - Several instances: claims take due rows with `FOR UPDATE SKIP LOCKED` under a
///   per-upstream advisory lock, so the per-upstream concurrency holds across instances;
///   caller keys and webhook event ids are unique keys, so a repeat on another instance finds
///   the first; leases expire and fence (``Lease``). A change that makes work due is
///   announced with `NOTIFY`, and ``watchDeliveries(_:)`` wakes idle workers on every instance.
/// - Its tables are in the schema `search_path` names (`options=-c search_path=…` in the
///   URL), `public` by default.
///
/// ```swift
/// let store = try await PostgresStore.open(PostgresLocation(url: url), logger: logger)
/// defer { Task { await store.close() } }
/// ```
public final class PostgresStore: Sendable {
    let client: PostgresClient
    /// Where the database is (its password never printed).
    public let location: PostgresLocation
    let logger: Logger
    /// The task running the client's connection pool, from ``open(_:logger:clock:)`` to ``close()``.
    private let runner = Mutex<Task<Void, Never>?>(nil)
    /// The history part of the status counts, reused for a while once it is large.
    let statusCounts: StatusCounts
    /// The schema the tables are in, as a quoted identifier.
    let schema: String
    /// The channel that announces deliveries that may be due (one per schema).
    let channel: String
    /// Finished attempts waiting to be recorded: concurrent finishes share one statement and
    /// one commit (``finish(_:client:channel:logger:)``).
    let finishes: GroupCommit<PendingFinish, Bool>

    private init<C: Clock>(location: PostgresLocation, logger: Logger, clock: C) throws(StoreError)
    where C.Duration == Duration {
        self.location = location
        self.logger = logger
        self.statusCounts = StatusCounts(clock: clock, maxAge: .seconds(30), threshold: 100_000)
        self.schema = Self.quoted(location.schema)
        // A channel name is an identifier (at most 63 bytes), sent quoted as is: the schema's
        // name reduced to plain letters, digits and '_', shortened to fit.
        let plain = location.schema.lowercased().unicodeScalars.filter {
            $0.isASCII && ($0 == "_" || CharacterSet.alphanumerics.contains($0))
        }
        let channel = String("belay_due_\(String(String.UnicodeScalarView(plain)))".prefix(63))
        self.channel = channel
        var configuration: PostgresClient.Configuration
        if let socket = location.unixSocketPath {
            configuration = .init(
                unixSocketPath: socket,
                username: location.user,
                password: location.password,
                database: location.database
            )
        } else {
            configuration = .init(
                host: location.host,
                port: location.port,
                username: location.user,
                password: location.password,
                database: location.database,
                tls: try Self.tls(location)
            )
        }
        configuration.options.maximumConnections = location.poolSize
        configuration.options.connectTimeout = location.connectTimeout
        configuration.options.additionalStartupParameters = Self.startupParameters(location)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        // 18 parameters a row: 512 rows stay far below the protocol's 65,535.
        self.finishes = GroupCommit(maxBatch: 512) { (batch: [PendingFinish]) throws(StoreError) in
            try await Self.finish(batch, client: client, channel: channel, logger: logger)
        }
    }

    deinit {
        runner.withLock { $0?.cancel() }
    }

    /// Starts the client's pool; returns once its task runs the pool (a query made earlier would wait, and warn).
    private func start() async {
        let client = self.client
        await withCheckedContinuation { (started: CheckedContinuation<Void, Never>) in
            let task = Task {
                started.resume()
                await client.run()
            }
            runner.withLock { $0 = task }
        }
    }

    /// Connects to the database at `location` and migrates it.
    ///
    /// - Parameter clock: times how long ``counts()`` reuses the history's counts.
    /// - Throws: ``StoreError/Code/open`` when it cannot connect (the reason, never the
    ///   password), ``StoreError/Code/migration`` when a migration fails.
    public static func open<C: Clock>(
        _ location: PostgresLocation,
        logger: Logger,
        clock: C = ContinuousClock()
    ) async throws(StoreError) -> PostgresStore where C.Duration == Duration {
        let store = try PostgresStore(location: location, logger: logger, clock: clock)
        do {
            // Migrates on a connection of its own, made first: one that cannot be made fails
            // at once with the reason (wrong password, refused, no such database), where the
            // pool would retry for a minute. The pool starts once the schema is current.
            try await store.migrate()
            await store.start()
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    /// Closes every connection. The store cannot be used afterwards.
    public func close() async {
        guard let task = runner.withLock({ $0 }) else { return }
        task.cancel()
        await task.value
    }

    /// The settings of one connection outside the pool (the migration's): the pool's, so that
    /// a connection that cannot be made fails at once with the server's reason (the pool
    /// retries for a minute, then names no reason).
    static func connectionConfiguration(
        _ location: PostgresLocation
    ) throws(StoreError) -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let socket = location.unixSocketPath {
            configuration = .init(
                unixSocketPath: socket,
                username: location.user,
                password: location.password,
                database: location.database
            )
        } else {
            let tls: PostgresConnection.Configuration.TLS
            do {
                switch try Self.tlsSettings(location) {
                case .some(let (configuration, required)):
                    let context = try NIOSSLContext(configuration: configuration)
                    tls = required ? .require(context) : .prefer(context)
                case .none:
                    tls = .disable
                }
            } catch let error as StoreError {
                throw error
            } catch {
                throw StoreError(.open, "storage.url: cannot set up TLS", underlying: PostgresFailure(error))
            }
            configuration = .init(
                host: location.host,
                port: location.port,
                username: location.user,
                password: location.password,
                database: location.database,
                tls: tls
            )
        }
        let timeout = location.connectTimeout.components
        configuration.options.connectTimeout = .seconds(timeout.seconds)
        configuration.options.additionalStartupParameters = startupParameters(location)
        return configuration
    }

    /// The settings sent on connecting: the URL's, and `application_name` `belay` unless it names one.
    static func startupParameters(_ location: PostgresLocation) -> [(String, String)] {
        var parameters = location.startupParameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if location.startupParameters["application_name"] == nil { parameters.append(("application_name", "belay")) }
        return parameters
    }

    /// The client's TLS mode for `location`'s `sslmode`.
    private static func tls(_ location: PostgresLocation) throws(StoreError) -> PostgresClient.Configuration.TLS {
        switch try tlsSettings(location) {
        case .some(let (configuration, required)): required ? .require(configuration) : .prefer(configuration)
        case .none: .disable
        }
    }

    /// The TLS settings for `location`'s `sslmode`, and whether TLS is required; nil: none.
    ///
    /// As libpq's: `require` with an `sslrootcert` checks the chain as `verify-ca` does (a file
    /// of roots the URL names is never silently unused). `prefer` checks nothing and reads no
    /// `sslrootcert`: it takes plain text from a server that declines TLS anyway.
    private static func tlsSettings(_ location: PostgresLocation) throws(StoreError) -> (TLSConfiguration, Bool)? {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch location.tlsMode {
        case .disable:
            return nil
        case .prefer:
            tls.certificateVerification = .none
            return (tls, false)
        case .require:
            tls.certificateVerification = location.rootCertificatePath == nil ? .none : .noHostnameVerification
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
        case .verifyFull:
            tls.certificateVerification = .fullVerification
        }
        if let path = location.rootCertificatePath {
            tls.trustRoots = .certificates(try rootCertificates(path))
        }
        return (tls, true)
    }

    /// The certificates of the `sslrootcert` file at `path`, read once, at open: a file that
    /// cannot be read, a folder, or one that holds no certificate is refused here, naming it,
    /// not at the first handshake (or, given to BoringSSL as a path, not at all).
    private static func rootCertificates(_ path: String) throws(StoreError) -> [NIOSSLCertificate] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder),
            FileManager.default.isReadableFile(atPath: path)
        else {
            throw StoreError(.open, "storage.url: the sslrootcert file \(path) cannot be read")
        }
        if isFolder.boolValue {
            throw StoreError(.open, "storage.url: the sslrootcert file \(path) is a folder; name a PEM file")
        }
        do {
            return try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw StoreError(
                .open,
                "storage.url: the sslrootcert file \(path) holds no PEM certificates (-----BEGIN CERTIFICATE-----)"
            )
        }
    }

    /// The error for a connection to `location` that could not be made (`error`): the TLS
    /// problem in words when it was one, the server's or the network's reason otherwise.
    static func cannotConnect(to location: PostgresLocation, _ error: any Error) -> StoreError {
        let what = "cannot connect to the PostgreSQL database \(location)"
        guard let reason = tlsProblem(location, error) else {
            return StoreError(.open, what, underlying: PostgresFailure(error))
        }
        return StoreError(.open, "\(what): \(reason)", underlying: PostgresFailure(error))
    }

    /// What went wrong with TLS, if that is why `error` ended a connection to `location`.
    private static func tlsProblem(_ location: PostgresLocation, _ error: any Error) -> String? {
        var cause = error
        if let error = error as? PSQLError {
            if error.code == .sslUnsupported {
                return "the server does not offer TLS, which sslmode=\(location.tlsMode.rawValue) requires"
            }
            if let underlying = error.underlying { cause = underlying }
        }
        if let failure = cause as? NIOSSLExtraError, failure == .failedToValidateHostname {
            return "the server's certificate does not name the host \(location.host) "
                + "(sslmode=verify-full checks the host name; verify-ca does not)"
        }
        if case NIOSSLError.handshakeFailed(let failure) = cause, "\(failure)".contains("CERTIFICATE_VERIFY_FAILED") {
            let roots =
                location.rootCertificatePath.map { "the sslrootcert file \($0)" }
                ?? "the system's trusted roots (no sslrootcert)"
            return "the server's certificate cannot be verified against \(roots): "
                + "no certificate authority there signed it, or it is expired or not yet valid"
        }
        return nil
    }

    static func quoted(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: running queries

    /// Starts a transaction at the isolation every statement here is written for: each
    /// statement sees what committed before it began (after waiting for a lock or a unique
    /// key), whatever `default_transaction_isolation` the server or role sets.
    static let begin: PostgresQuery = "BEGIN ISOLATION LEVEL READ COMMITTED"

    /// Runs `body` in one transaction on one pooled connection, turning database errors into
    /// ``StoreError``. A serialization failure or deadlock (another instance's transaction
    /// crossed this one) is retried, up to three times in all.
    func transaction<T: Sendable>(
        _ what: @autoclosure () -> String,
        _ body: (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        try await Self.transaction(what(), client: client, logger: logger, body)
    }

    /// ``transaction(_:_:)`` on a connection of `client`.
    static func transaction<T: Sendable>(
        _ what: @autoclosure () -> String,
        client: PostgresClient,
        logger: Logger,
        _ body: (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await client.withConnection { connection in
                    try await connection.query(Self.begin, logger: logger)
                    do {
                        let value = try await body(connection)
                        try await connection.query("COMMIT", logger: logger)
                        return value
                    } catch {
                        _ = try? await connection.query("ROLLBACK", logger: logger)
                        throw error
                    }
                }
            } catch let error as StoreError {
                throw error
            } catch {
                let failure = PostgresFailure(error)
                if failure.isRetryable && attempt < 3 { continue }
                throw StoreError(.io, "cannot \(what())", underlying: failure)
            }
        }
    }

    /// Runs `body` on one pooled connection outside a transaction (reads, and writes whose
    /// statements each commit alone, such as the copy's), turning database errors into
    /// ``StoreError``.
    func reading<T: Sendable>(
        _ what: @autoclosure () -> String,
        _ body: (PostgresConnection) async throws -> T
    ) async throws(StoreError) -> T {
        do {
            return try await client.withConnection { connection in try await body(connection) }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, "cannot \(what())", underlying: PostgresFailure(error))
        }
    }

    /// Runs `body` even if the calling task is cancelled (a shutdown's last writes).
    func uncancelled<T: Sendable>(
        _ body: @escaping @Sendable () async throws(StoreError) -> T
    ) async throws(StoreError) -> T {
        let task = Task.detached { () async -> Result<T, StoreError> in
            do throws(StoreError) { return .success(try await body()) } catch { return .failure(error) }
        }
        return try await task.value.get()
    }
}

extension PostgresConnection {
    /// Every row `query` returns.
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRandomAccessRow] {
        var rows: [PostgresRandomAccessRow] = []
        for try await row in try await self.query(query, logger: logger) {
            rows.append(row.makeRandomAccess())
        }
        return rows
    }

    /// Runs `query` and discards what it returns; returns how many rows it returned.
    @discardableResult
    func run(_ query: PostgresQuery, logger: Logger) async throws -> Int {
        var count = 0
        for try await _ in try await self.query(query, logger: logger) { count += 1 }
        return count
    }
}

extension PostgresRandomAccessRow {
    /// The value of column `name`, decoded as `T` (an optional type for a nullable column).
    func value<T: PostgresDecodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        guard contains(name) else {
            throw StoreError(.corrupt, "a row has no column '\(name)'")
        }
        do {
            return try self[name].decode(T.self, context: .default)
        } catch {
            throw StoreError(.corrupt, "column '\(name)' is not a \(T.self)", underlying: PostgresFailure(error))
        }
    }
}

/// A PostgreSQL error described without what could hold secrets or payloads: the failure's
/// kind, the server's SQLSTATE and message, never the query or its values.
struct PostgresFailure: Error, CustomStringConvertible {
    var description: String
    /// The server's SQLSTATE code, if it answered with an error.
    var sqlState: String?

    init(_ error: any Error) {
        if let failure = error as? PostgresFailure {
            self = failure
            return
        }
        if let error = error as? PSQLError {
            sqlState = error.serverInfo?[.sqlState]
            if let info = error.serverInfo {
                let message = info[.message] ?? "error"
                description = "PostgreSQL \(info[.severity] ?? "ERROR") \(sqlState ?? "?"): \(message)"
            } else if let underlying = error.underlying {
                description = "PostgreSQL \(error.code): \(Self.plain(underlying))"
            } else {
                description = "PostgreSQL \(error.code)"
            }
        } else {
            sqlState = nil
            description = Self.plain(error)
        }
    }

    /// A failure another try may not meet: a serialization failure or a deadlock.
    var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" }

    /// A unique key was violated.
    var isUniqueViolation: Bool { sqlState == "23505" }

    private static func plain(_ error: any Error) -> String {
        // NIO's and the system's errors name addresses and causes, never credentials.
        String(describing: error)
    }
}
