import Foundation
import Testing

@testable import BelayStore

/// `storage.url` for PostgreSQL: libpq's URL forms, and a password that never shows.
@Suite struct PostgresLocationTests {
    private let secret = "s3cr3t-Pa55"

    @Test func theUsualFormWithPercentEncodedParts() throws {
        let location = try PostgresLocation(
            url: "postgres://bel%40y:p%40ss%3Aw%2Frd@db.internal:6543/my%20db?sslmode=verify-full&pool_size=20"
        )
        #expect(location.user == "bel@y")
        #expect(location.password == "p@ss:w/rd")
        #expect(location.host == "db.internal" && location.port == 6543)
        #expect(location.database == "my db")
        #expect(location.tlsMode == .verifyFull && location.poolSize == 20)
        #expect(location.unixSocketPath == nil)
        #expect(location.schema == "public")
    }

    @Test func defaultsAreLibpqs() throws {
        let location = try PostgresLocation(url: "postgresql://belay@localhost")
        #expect(location.port == 5432 && location.database == "belay" && location.password == nil)
        #expect(location.tlsMode == .prefer && location.poolSize == PostgresLocation.defaultPoolSize)
        #expect(location.connectTimeout == .seconds(10))
        // No host at all is the local one too.
        #expect(try PostgresLocation(url: "postgres://belay@/belay").host == "localhost")
    }

    @Test func anUnencodedAtInThePasswordEndsAtTheLastAt() throws {
        let location = try PostgresLocation(url: "postgres://belay:p@ss@db/belay")
        #expect(location.password == "p@ss" && location.host == "db")
    }

    @Test func aUnixSocketFolderAsTheHostOrAsAParameter() throws {
        let encoded = try PostgresLocation(url: "postgresql://belay@%2Fvar%2Frun%2Fpostgresql/belay")
        #expect(encoded.host == "/var/run/postgresql")
        #expect(encoded.unixSocketPath == "/var/run/postgresql/.s.PGSQL.5432")
        let parameters = try PostgresLocation(url: "postgres:///belay?host=/var/run/postgresql&user=belay&port=5433")
        #expect(parameters.host == "/var/run/postgresql" && parameters.user == "belay")
        #expect(parameters.unixSocketPath == "/var/run/postgresql/.s.PGSQL.5433")
        #expect(parameters.database == "belay")
    }

    @Test func parametersOverrideTheURLsParts() throws {
        let location = try PostgresLocation(
            url: "postgres://a:b@h1:1/d1?user=u2&password=\(secret)&dbname=d2&host=h2&port=2"
        )
        #expect(location.user == "u2" && location.password == secret && location.database == "d2")
        #expect(location.host == "h2" && location.port == 2)
    }

    @Test func anIPv6AddressIsBracketed() throws {
        let location = try PostgresLocation(url: "postgres://belay@[::1]:6000/belay")
        #expect(location.host == "::1" && location.port == 6000)
        #expect(location.description.contains("@[::1]:6000/"))
        let noPort = try PostgresLocation(url: "postgres://belay@[fe80::1%25eth0]/belay")
        #expect(noPort.host == "fe80::1%eth0" && noPort.port == 5432)
        #expect(throws: StoreError.self) { try PostgresLocation(url: "postgres://belay@[::1/belay") }
        #expect(throws: StoreError.self) { try PostgresLocation(url: "postgres://belay@[::1]x/belay") }
    }

    @Test(arguments: PostgresLocation.TLSMode.allCases)
    func everySSLModeIsRead(_ mode: PostgresLocation.TLSMode) throws {
        #expect(try PostgresLocation(url: "postgres://belay@db/belay?sslmode=\(mode.rawValue)").tlsMode == mode)
    }

    @Test func anUnknownSSLModeIsRefusedNamingTheKnownOnes() throws {
        let error = try #require(throws: StoreError.self) {
            try PostgresLocation(url: "postgres://belay:\(secret)@db/belay?sslmode=allow")
        }
        #expect(error.code == .open)
        #expect(error.message.contains("sslmode 'allow'") && error.message.contains("verify-full"))
        #expect(!"\(error)".contains(secret))
    }

    @Test func anEncryptedModeOverAUnixSocketIsRefused() throws {
        #expect(throws: StoreError.self) {
            try PostgresLocation(url: "postgres://belay@%2Ftmp/belay?sslmode=require")
        }
        #expect(try PostgresLocation(url: "postgres://belay@%2Ftmp/belay?sslmode=disable").tlsMode == .disable)
    }

    @Test(arguments: [3, 10, 1_000])
    func aPoolSizeWithinItsBoundsIsTaken(_ size: Int) throws {
        #expect(try PostgresLocation(url: "postgres://belay@db/belay?pool_size=\(size)").poolSize == size)
        #expect(try PostgresLocation(url: "postgres://belay@db/belay?pool_max_conns=\(size)").poolSize == size)
    }

    @Test(arguments: ["2", "1001", "0", "-5", "ten", ""])
    func aPoolSizeOutsideItsBoundsIsRefused(_ size: String) throws {
        let error = try #require(throws: StoreError.self) {
            try PostgresLocation(url: "postgres://belay:\(secret)@db/belay?pool_size=\(size)")
        }
        #expect(error.message.contains("pool_size") && error.message.contains("3 to 1000"))
        #expect(!"\(error)".contains(secret))
    }

    @Test func theSchemaIsTheFirstOfTheSearchPathInOptions() throws {
        let spaced = try PostgresLocation(
            url: "postgres://belay@db/belay?options=-c%20search_path%3Dtenant_a%2Cpublic&application_name=gw-1"
        )
        #expect(spaced.schema == "tenant_a")
        #expect(spaced.startupParameters == ["search_path": "tenant_a,public", "application_name": "gw-1"])
        let joined = try PostgresLocation(url: "postgres://belay@db/belay?options=-csearch_path%3Dtenant_b")
        #expect(joined.schema == "tenant_b")
        let long = try PostgresLocation(url: "postgres://belay@db/belay?options=--search-path%3D%22Tenant%22")
        #expect(long.schema == "Tenant")
        // As PostgreSQL splits options: a backslash keeps a space within a setting.
        let escaped = try PostgresLocation(
            url: "postgres://belay@db/belay?options=-c%20default_transaction_isolation%3Drepeatable%5C%20read"
                + "%20-c%20search_path%3Dt"
        )
        #expect(escaped.startupParameters == ["default_transaction_isolation": "repeatable read", "search_path": "t"])
        #expect(throws: StoreError.self) { try PostgresLocation(url: "postgres://belay@db/belay?options=-c") }
        #expect(throws: StoreError.self) { try PostgresLocation(url: "postgres://belay@db/belay?options=search") }
    }

    @Test(arguments: [
        "mysql://belay@db/belay",
        "postgres://db/belay",
        "postgres://belay@db:0/belay",
        "postgres://belay@db:70000/belay",
        "postgres://belay@db:port/belay",
        "postgres://belay@h1,h2/belay",
        "postgres://belay@db/belay?target_session_attrs=any",
        "postgres://belay@db/belay?sslmode=disable&sslmode=require",
        "postgres://belay@db/belay?connect_timeout=0",
        "postgres://belay@db/be lay",
        "postgres://belay@db/belay?sslrootcert=",
        "postgres://belay@db/%ZZ",
    ])
    func aURLThatCannotBeReadIsRefused(_ url: String) throws {
        let error = try #require(throws: StoreError.self) { try PostgresLocation(url: url) }
        #expect(error.code == .open)
        #expect(error.message.hasPrefix("storage.url "))
    }

    /// As in PostgreSQL, an unquoted name in `search_path` is folded to lower case, and
    /// `$user` is the user's own schema.
    @Test func theSchemaIsNamedAsPostgreSQLReadsTheSearchPath() throws {
        func schema(_ path: String) throws -> String {
            let encoded = try #require(path.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
            return try PostgresLocation(url: "postgres://Belay@db/belay?options=-c%20search_path%3D\(encoded)").schema
        }
        #expect(try schema("Tenant") == "tenant")
        #expect(try schema("\"Tenant\"") == "Tenant")
        #expect(try schema("tenant_c,public") == "tenant_c")
        #expect(try schema("\"$user\",public") == "Belay")
        #expect(try schema("$user") == "Belay")
        #expect(try schema("\"we\"\"ird\",public") == "we\"ird")
        #expect(try schema("") == "public")
    }

    /// A password with an unencoded `/`, `?` or `#` cuts the URL short before its `@`: refused,
    /// saying what to encode, never read as a host and a database. In a value an `@` is text.
    @Test func anAtAfterTheHostIsRefusedUnlessInAParameterValue() throws {
        for url in ["postgres://belay:12/pw@db/belay", "postgres://belay:x?pw@db/belay", "postgres://belay:x#pw@db"] {
            let error = try #require(throws: StoreError.self) { try PostgresLocation(url: url) }
            #expect(error.message.contains("percent-encode '@', ':', '/', '?' and '#'"), "\(error)")
            #expect(!error.message.contains("pw"), "\(error)")
        }
        #expect(try PostgresLocation(url: "postgres://belay@db/belay?password=p@ss").password == "p@ss")
    }

    @Test func anUnknownParameterIsRefusedByName() throws {
        let error = try #require(throws: StoreError.self) {
            try PostgresLocation(url: "postgres://belay:\(secret)@db/belay?pool=5")
        }
        #expect(error.message.contains("unknown parameter 'pool'"))
    }

    /// Every way to write the password, in URLs that are read and in URLs that are refused:
    /// neither the description nor any error shows it, in any encoding.
    @Test(arguments: [
        "postgres://belay:{pw}@db/belay",
        "postgres://belay:{pw}@db/belay?sslmode=bogus",
        "postgres://belay:{pw}@db/belay?unknown=1",
        "postgres://belay:{pw}@db:99999/belay",
        "postgres://belay:{pw}@[::1/belay",
        "postgres://belay@db/belay?password={pw}",
        "postgres://belay@db/belay?password={pw}&pool_size=1",
        "postgres://belay@db/belay?pool_size=1&password={pw}",
        "postgres://belay@db/belay?PASSWORD={pw}&x=1",
        "postgres://belay:{pw}@db/belay?options=-c",
        "postgres://belay:{pw}@db/belay#{pw}",
        "postgres://:{pw}@db/belay",
        "postgres://belay:{pw}@h1,h2/belay",
        "postgres://belay:{pw}@db/belay?sslmode=require&host=/tmp",
        "postgres://belay:{pw}@db/belay?connect_timeout=99999",
        "postgres://belay:{pw}@db/be lay",
        // Unencoded '/', '?', '#' in the password: the URL is misread, and still nothing shows.
        "postgres://belay:{pw}/x@db/belay",
        "postgres://belay:{pw}?x@db/belay",
        "postgres://belay:{pw}#x@db/belay",
        "postgres://belay:x/{pw}@db/belay",
        "postgres://belay:x?{pw}@db/belay",
        "postgres://belay:x#{pw}@db/belay",
    ])
    func thePasswordNeverShows(_ template: String) throws {
        for written in [secret, "s3cr3t%2DPa55", "p%40ss-\(secret)"] {
            let url = template.replacingOccurrences(of: "{pw}", with: written)
            let decoded = written.removingPercentEncoding ?? written
            var texts: [String] = [PostgresLocation.redacted(url)]
            do {
                let location = try PostgresLocation(url: url)
                var dumped = ""
                dump(location, to: &dumped)
                texts += [location.description, String(reflecting: location), dumped]
            } catch {
                texts += ["\(error)", String(reflecting: error), error.message]
            }
            for text in texts {
                #expect(!text.contains(written), "\(text)")
                #expect(!text.contains(decoded), "\(text)")
                #expect(!text.contains(secret), "\(text)")
            }
        }
    }
}
