import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import BelayStore

#if canImport(Glibc)
import Glibc
#endif

/// `sslmode` and `sslrootcert` against a server with TLS: the test cluster of
/// scripts/pg-cluster.sh, whose certificate (for `127.0.0.1` and `localhost`) is signed by a
/// throwaway CA, `POSTGRES_SSLROOTCERT`. Another CA, made here with openssl, stands for an
/// impostor's.
@Suite(
    .enabled(if: TestPostgres.isTLSConfigured, Comment(rawValue: TestPostgres.tlsNotConfigured)),
    .timeLimit(.minutes(2))
)
struct PostgresTLSTests {
    /// A mode and host that must connect over TLS.
    struct Case: Sendable, CustomTestStringConvertible {
        var mode: PostgresLocation.TLSMode
        var host: String
        /// Whether the URL names the test CA as `sslrootcert` (else the system's roots, which do not hold it).
        var rootCertificate: Bool

        var testDescription: String {
            "sslmode=\(mode.rawValue) to \(host)" + (rootCertificate ? " with sslrootcert" : "")
        }
    }

    @Test(arguments: [
        Case(mode: .verifyFull, host: "127.0.0.1", rootCertificate: true),
        Case(mode: .verifyFull, host: "localhost", rootCertificate: true),
        Case(mode: .verifyCA, host: "127.0.0.1", rootCertificate: true),
        Case(mode: .require, host: "127.0.0.1", rootCertificate: true),
        Case(mode: .require, host: "127.0.0.1", rootCertificate: false),
        Case(mode: .prefer, host: "localhost", rootCertificate: false),
    ])
    func connectsOverTLSAndTheStoreWorks(_ test: Case) async throws {
        try await TestPostgres.withSchema { schema in
            var tls = "sslmode=\(test.mode.rawValue)"
            if test.rootCertificate { tls += "&sslrootcert=" + Self.encoded(try Self.testCA()) }
            let store = try await Self.open(schema: schema, host: test.host, tls: tls)
            do {
                // The pool's connections are encrypted, as the server sees them (the migration's was too, or
                // the store would not be open).
                #expect(try await Self.sessionIsEncrypted(store))
                _ = try await store.insert([newDelivery("dlv_tls")])
                #expect(try await store.counts() == [.pending: 1])
                await store.close()
            } catch {
                await store.close()
                throw error
            }
        }
    }

    /// A server whose certificate another CA signed (an impostor's, to a client that trusts
    /// only its own CA) is refused before the password is sent, saying why.
    @Test(arguments: [PostgresLocation.TLSMode.verifyFull, .verifyCA, .require])
    func aCertificateOfAnotherCAIsRefusedNamingTheProblem(_ mode: PostgresLocation.TLSMode) async throws {
        try await TestPostgres.withSchema { schema in
            try await withTemporaryFolder { folder in
                let other = try Self.makeCA(in: folder)
                let error = try await #require(throws: StoreError.self) {
                    _ = try await Self.open(
                        schema: schema,
                        tls: "sslmode=\(mode.rawValue)&sslrootcert=\(Self.encoded(other))"
                    )
                }
                #expect(error.code == .open, "\(error)")
                #expect(error.message.contains("certificate"), "\(error)")
                #expect(error.message.contains(other), "\(error)")
                Self.expectNoPassword(in: error)
            }
        }
    }

    /// `verify-full` with no `sslrootcert` trusts the system's roots, which do not hold the test CA.
    @Test func verifyFullWithoutARootCertificateTrustsOnlyTheSystemsRoots() async throws {
        try await TestPostgres.withSchema { schema in
            let error = try await #require(throws: StoreError.self) {
                _ = try await Self.open(schema: schema, tls: "sslmode=verify-full")
            }
            #expect(error.code == .open, "\(error)")
            #expect(error.message.contains("certificate"), "\(error)")
            Self.expectNoPassword(in: error)
        }
    }

    /// `verify-full` checks the name the URL connects to; `verify-ca` does not. The server's
    /// certificate names `127.0.0.1` and `localhost`; `::ffff:127.0.0.1` (the same address,
    /// IPv4-mapped) is neither.
    @Test func verifyFullChecksTheHostNameAndVerifyCADoesNot() async throws {
        let mapped = "::ffff:127.0.0.1"
        try await TestPostgres.withSchema { schema in
            do {
                try await Self.open(schema: schema, host: mapped, tls: "sslmode=disable").close()
            } catch {
                try Test.cancel("IPv4-mapped IPv6 addresses cannot be reached here: \(error)")
            }
            let roots = "&sslrootcert=" + Self.encoded(try Self.testCA())
            let store = try await Self.open(schema: schema, host: mapped, tls: "sslmode=verify-ca" + roots)
            #expect(try await Self.sessionIsEncrypted(store))
            await store.close()
            let error = try await #require(throws: StoreError.self) {
                _ = try await Self.open(schema: schema, host: mapped, tls: "sslmode=verify-full" + roots)
            }
            #expect(error.code == .open, "\(error)")
            #expect(error.message.contains("host name"), "\(error)")
            #expect(error.message.contains(mapped), "\(error)")
            Self.expectNoPassword(in: error)
        }
    }

    /// An `sslrootcert` that cannot be read, or holds no certificate, is refused naming
    /// `storage.url` and the file, before any connection.
    @Test(arguments: ["missing.pem", "empty.pem", "not-a-certificate.pem", "folder"])
    func aRootCertificateFileThatCannotBeUsedIsNamed(_ name: String) async throws {
        try await TestPostgres.withSchema { schema in
            try await withTemporaryFolder { folder in
                let path = folder.appendingPathComponent(name).path
                switch name {
                case "empty.pem": try Data().write(to: URL(fileURLWithPath: path))
                case "not-a-certificate.pem":
                    try Data("-----BEGIN NOTHING-----\n".utf8).write(to: URL(fileURLWithPath: path))
                case "folder": try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
                default: break
                }
                for mode in ["require", "verify-full"] {
                    let error = try await #require(throws: StoreError.self) {
                        _ = try await Self.open(
                            schema: schema,
                            tls: "sslmode=\(mode)&sslrootcert=\(Self.encoded(path))"
                        )
                    }
                    #expect(error.code == .open, "\(error)")
                    #expect(error.message.hasPrefix("storage.url"), "\(error)")
                    #expect(error.message.contains("sslrootcert file \(path)"), "\(error)")
                    Self.expectNoPassword(in: error)
                }
            }
        }
    }

    // MARK: helpers

    private static func open(
        schema: String,
        host: String = TestPostgres.host,
        tls: String
    ) async throws -> PostgresStore {
        try await PostgresStore.open(
            PostgresLocation(url: TestPostgres.url(schema: schema, host: host, tls: tls)),
            logger: Logger(label: "belay.test.store")
        )
    }

    /// Whether the server sees a pooled session of `store` as encrypted.
    private static func sessionIsEncrypted(_ store: PostgresStore) async throws -> Bool {
        try await store.reading("read pg_stat_ssl") { connection in
            try await connection.rows(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                logger: store.logger
            ).first?.value("ssl", as: Bool.self)
        } ?? false
    }

    private static func expectNoPassword(in error: StoreError, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let password = TestPostgres.password else { return }
        #expect(!"\(error)".contains(password), sourceLocation: sourceLocation)
        #expect(!String(reflecting: error).contains(password), sourceLocation: sourceLocation)
    }

    private static func testCA() throws -> String {
        try #require(TestPostgres.rootCertificate)
    }

    private static func encoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    /// Makes a CA of its own in `folder` with openssl (as scripts/pg-cluster.sh makes the
    /// server's) and returns its certificate's PEM file.
    private static func makeCA(in folder: URL) throws -> String {
        let certificate = folder.appendingPathComponent("other-ca.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "1", "-subj", "/CN=Another CA", "-keyout", folder.appendingPathComponent("other-ca.key").path,
            "-out", certificate, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let said = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "openssl: \(String(decoding: said, as: UTF8.self))")
        return certificate
    }
}

/// Runs `body` with a new empty folder, removed afterwards.
private func withTemporaryFolder<T>(_ body: (URL) async throws -> T) async throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-tls-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    return try await body(folder)
}

/// `require` against a server that declines TLS (a listener answering the client's
/// SSLRequest with `N`, as PostgreSQL with `ssl = off` does): refused before anything else is
/// sent, saying why. Needs no database.
@Suite(.timeLimit(.minutes(1)))
struct PostgresWithoutTLSTests {
    @Test(arguments: [PostgresLocation.TLSMode.require, .verifyCA, .verifyFull])
    func anEncryptedModeRefusesAServerWithoutTLS(_ mode: PostgresLocation.TLSMode) async throws {
        let server = try #require(DecliningServer())
        defer { server.stop() }
        let secret = "secret-\(UUID().uuidString)"
        let url = "postgres://belay:\(secret)@127.0.0.1:\(server.port)/belay?sslmode=\(mode.rawValue)&connect_timeout=5"
        let error = try await #require(throws: StoreError.self) {
            _ = try await PostgresStore.open(PostgresLocation(url: url), logger: Logger(label: "belay.test.store"))
        }
        #expect(error.code == .open, "\(error)")
        #expect(error.message.contains("does not offer TLS"), "\(error)")
        #expect(error.message.contains("sslmode=\(mode.rawValue)"), "\(error)")
        #expect(!"\(error)".contains(secret))
        #expect(server.received.count == 8, "only the SSLRequest: \(server.received)")
    }
}

/// A listener on 127.0.0.1 that takes one connection, reads its SSLRequest (8 bytes),
/// answers `N` and reads until the client hangs up, on a thread of its own.
private final class DecliningServer: Sendable {
    let port: Int
    private let descriptor: Int32
    private let bytes = Mutex<[UInt8]>([])
    private let done = DispatchSemaphore(value: 0)

    /// What the client sent, once it has hung up (or 10 s have passed).
    var received: [UInt8] {
        if done.wait(timeout: .now() + 10) == .success { done.signal() }
        return bytes.withLock { $0 }
    }

    init?() {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ready = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && listen(descriptor, 1) == 0
                    && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard ready else {
            close(descriptor)
            return nil
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in serve() }
    }

    private func serve() {
        defer { done.signal() }
        let client = accept(descriptor, nil, nil)
        guard client >= 0 else { return }
        defer { close(client) }
        var buffer = [UInt8](repeating: 0, count: 256)
        var answered = false
        while true {
            let count = read(client, &buffer, buffer.count)
            guard count > 0 else { return }
            let total = bytes.withLock {
                $0 += buffer[..<count]
                return $0.count
            }
            if total >= 8 && !answered {
                answered = true
                var no = UInt8(ascii: "N")
                _ = write(client, &no, 1)
            }
        }
    }

    /// Stops listening (a pending `accept` returns).
    func stop() {
        shutdown(descriptor, Int32(SHUT_RDWR))
        close(descriptor)
    }
}
