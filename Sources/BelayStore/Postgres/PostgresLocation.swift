import Foundation

/// Where a PostgreSQL database is and how to connect to it, read from a libpq connection URL.
///
/// ```
/// postgres://belay:secret@db.internal:5432/belay?sslmode=verify-full&pool_size=20
/// postgresql://belay@%2Fvar%2Frun%2Fpostgresql/belay          (a Unix socket folder as the host)
/// postgres:///belay?host=/var/run/postgresql&user=belay       (the same, as parameters)
/// ```
///
/// - The user, password and database may be percent-encoded; `user`, `password`, `dbname`,
///   `host` and `port` parameters override the URL's parts, as libpq does.
/// - `sslmode`: `disable`, `prefer` (the default, as libpq's), `require` (encrypted, the
///   server's certificate not checked unless `sslrootcert` is given, as libpq does),
///   `verify-ca` (checked against the trusted roots) or `verify-full` (checked, and the host
///   name too). `sslrootcert` names a PEM file of roots to trust instead of the system's.
/// - `pool_size`: connections this instance may open (3–1000, default 10): one listens for
///   announcements, one holds the retention lock while retention runs, the rest do the work.
/// - `connect_timeout`: seconds to wait for a connection (default 10).
/// - `application_name`, and `options` as `-c name=value` settings, are sent on connecting.
///
/// The password is never part of ``description`` or of any error: a URL that cannot be read
/// is described with its password replaced.
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    /// How the connection is encrypted, as libpq's `sslmode`.
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// Never encrypted.
        case disable
        /// Encrypted if the server offers it, plain text if not; the certificate is not checked
        /// (and `sslrootcert` not read).
        case prefer
        /// Always encrypted; the certificate is not checked, unless `sslrootcert` is given: then
        /// it must chain to a root there, as with ``verifyCA`` (libpq's rule).
        case require
        /// Always encrypted; the certificate must chain to a trusted root.
        case verifyCA = "verify-ca"
        /// Always encrypted; the certificate must chain to a trusted root and name the host.
        case verifyFull = "verify-full"
    }

    /// A TCP host name or address, or (starting with `/`) the folder of a Unix socket.
    public var host: String
    /// The TCP port, or the socket's number (`.s.PGSQL.<port>`). Default 5432.
    public var port: Int
    /// The role to log in as.
    public var user: String
    /// The role's password, if any. Never printed.
    public var password: String?
    /// The database; by default the user's name.
    public var database: String
    /// How the connection is encrypted.
    public var tlsMode: TLSMode
    /// A PEM file of the roots to trust for `require`, `verify-ca` and `verify-full`; nil: the system's.
    public var rootCertificatePath: String?
    /// Connections this instance may open at once.
    public var poolSize: Int
    /// How long to wait for a new connection.
    public var connectTimeout: Duration
    /// Settings sent on connecting (`application_name`, `options`' `-c name=value`).
    public var startupParameters: [String: String]

    /// The default `pool_size`.
    public static let defaultPoolSize = 10

    /// The Unix socket path, when ``host`` is a folder.
    public var unixSocketPath: String? {
        host.hasPrefix("/") ? "\(host)/.s.PGSQL.\(port)" : nil
    }

    /// The schema Belay's tables are in: the first of `search_path` set through `options`, else
    /// `public`, read as PostgreSQL reads it (an unquoted name in lower case, `$user` the user's).
    public var schema: String {
        guard let path = startupParameters["search_path"] else { return "public" }
        let first = Self.firstSchema(in: path)
        if first.isEmpty { return "public" }
        return first == "$user" ? user : first
    }

    /// The first name of a `search_path` value: a quoted one as written (`""` is `"`), an
    /// unquoted one folded to lower case (ASCII letters only, as PostgreSQL does).
    private static func firstSchema(in path: String) -> String {
        var rest = Substring(path).drop { $0 == " " || $0 == "\t" }
        guard rest.first == "\"" else {
            let name = rest.prefix { $0 != "," }.trimmingCharacters(in: .whitespaces)
            return String(name.map { $0.isASCII && $0.isUppercase ? Character($0.lowercased()) : $0 })
        }
        rest = rest.dropFirst()
        var name = ""
        while let character = rest.first {
            rest = rest.dropFirst()
            if character == "\"" {
                guard rest.first == "\"" else { break }
                rest = rest.dropFirst()
            }
            name.append(character)
        }
        return name
    }

    public var description: String {
        let hostText = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)\(password == nil ? "" : ":<redacted>")@\(hostText):\(port)/\(database)"
            + "?sslmode=\(tlsMode.rawValue)&pool_size=\(poolSize)"
    }

    /// Reads a `postgres://` or `postgresql://` URL.
    /// - Throws: ``StoreError/Code/open`` naming what is wrong, never the password.
    public init(url text: String) throws(StoreError) {
        // An '@' after the host may mean a user name or password with an unencoded '/', '?' or
        // '#' was cut short: what was read around it may be part of the password, so an error
        // then names nothing it read (and the URL is shown with everything up to that '@' hidden).
        let misread = Self.hasAtAfterAuthority(text)
        func refuse(_ why: String) -> StoreError {
            let reason =
                misread
                ? "cannot be read: percent-encode '@', ':', '/', '?' and '#' in the user name and password "
                    + "(%40, %3A, %2F, %3F, %23), and '@' in the database name and parameter names (%40)"
                : why
            return StoreError(.open, "storage.url \(Self.redacted(text)): \(reason)")
        }
        let scheme: String
        if text.hasPrefix("postgres://") {
            scheme = "postgres://"
        } else if text.hasPrefix("postgresql://") {
            scheme = "postgresql://"
        } else {
            throw refuse("must start with postgres:// or postgresql://")
        }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == " " }) else {
            throw refuse("has spaces or control characters (percent-encode them)")
        }
        var rest = Substring(text.dropFirst(scheme.count))
        if let hash = rest.firstIndex(of: "#") {
            if rest[hash...].contains("@") { throw refuse("has an '@' in its fragment") }
            rest = rest[..<hash]
        }
        var queryText: Substring = ""
        if let question = rest.firstIndex(of: "?") {
            queryText = rest[rest.index(after: question)...]
            rest = rest[..<question]
        }
        var authority = rest
        var pathText: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            pathText = rest[rest.index(after: slash)...]
        }
        if pathText.contains("@") { throw refuse("has an '@' in its database name (percent-encode it: %40)") }
        var userText: Substring?
        var passwordText: Substring?
        // The last `@`: a password may hold an unencoded one.
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                userText = credentials[..<colon]
                passwordText = credentials[credentials.index(after: colon)...]
            } else {
                userText = credentials
            }
        }
        var hostText: String?
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw refuse("has an unclosed '[' in its host") }
            hostText = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw refuse("has text after its bracketed host")
            }
        } else if !authority.isEmpty {
            if authority.contains(",") {
                throw refuse("names several hosts; Belay connects to one (put a load balancer or proxy in front)")
            }
            if let colon = authority.lastIndex(of: ":") {
                hostText = String(authority[..<colon])
                portText = authority[authority.index(after: colon)...]
            } else {
                hostText = String(authority)
            }
        }
        func decoded(_ part: Substring, _ what: String) throws(StoreError) -> String {
            guard let value = String(part).removingPercentEncoding else {
                throw refuse("has a badly percent-encoded \(what)")
            }
            return value
        }
        var user = try userText.map { (part: Substring) throws(StoreError) in try decoded(part, "user") }
        var password = try passwordText.map { (part: Substring) throws(StoreError) in try decoded(part, "password") }
        var host = try hostText.map { (part: String) throws(StoreError) in try decoded(Substring(part), "host") }
        var database = pathText.isEmpty ? nil : try decoded(pathText, "database name")
        var port = portText.map(String.init)
        var tlsMode = TLSMode.prefer
        var rootCertificatePath: String?
        var poolSize = Self.defaultPoolSize
        var connectTimeout = Duration.seconds(10)
        var startup: [String: String] = [:]
        var seen: Set<String> = []
        for pair in queryText.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts[0].contains("@") { throw refuse("has an '@' in a parameter name") }
            let name = try decoded(parts[0], "parameter name")
            let value = try decoded(parts.count > 1 ? parts[1] : "", "value of \(name)")
            guard seen.insert(name).inserted else { throw refuse("repeats the parameter '\(name)'") }
            switch name {
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    let modes = TLSMode.allCases.map(\.rawValue).joined(separator: ", ")
                    throw refuse("sslmode '\(value)' is not one of \(modes)")
                }
                tlsMode = mode
            case "sslrootcert":
                guard !value.isEmpty else { throw refuse("sslrootcert names no file") }
                rootCertificatePath = value
            case "pool_size", "pool_max_conns":
                guard let size = Int(value), (3...1_000).contains(size) else {
                    throw refuse("\(name) '\(value)' must be a whole number from 3 to 1000")
                }
                poolSize = size
            case "connect_timeout":
                guard let seconds = Int(value), (1...3_600).contains(seconds) else {
                    throw refuse("connect_timeout '\(value)' must be whole seconds from 1 to 3600")
                }
                connectTimeout = .seconds(seconds)
            case "user": user = value
            case "password": password = value
            case "dbname": database = value
            case "host": host = value
            case "port": port = value
            case "application_name":
                startup["application_name"] = value
            case "options":
                for setting in try Self.settings(in: value, refuse: refuse) { startup[setting.0] = setting.1 }
            default:
                throw refuse(
                    "has the unknown parameter '\(name)' (known: sslmode, sslrootcert, pool_size, connect_timeout, "
                        + "user, password, dbname, host, port, application_name, options)"
                )
            }
        }
        guard let user, !user.isEmpty else { throw refuse("names no user (postgres://user:password@host/database)") }
        self.user = user
        self.password = password
        self.host = (host?.isEmpty ?? true) ? "localhost" : host!
        let portNumber: Int
        if let port {
            guard let number = Int(port), (1...65_535).contains(number) else {
                throw refuse("port '\(port)' must be a number from 1 to 65535")
            }
            portNumber = number
        } else {
            portNumber = 5432
        }
        self.port = portNumber
        self.database = (database?.isEmpty ?? true) ? user : database!
        self.tlsMode = tlsMode
        self.rootCertificatePath = rootCertificatePath
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
        self.startupParameters = startup
        if self.host.hasPrefix("/") && tlsMode != .disable && tlsMode != .prefer {
            throw refuse("sslmode \(tlsMode.rawValue) over a Unix socket: sockets are not encrypted; use disable")
        }
    }

    /// The `name=value` settings of an `options` value: `-c name=value` or `--name=value`, separated by spaces.
    private static func settings(
        in options: String,
        refuse: (String) -> StoreError
    ) throws(StoreError) -> [(String, String)] {
        var settings: [(String, String)] = []
        var words = Self.words(of: options).makeIterator()
        while let word = words.next() {
            var setting: Substring
            if word == "-c" {
                guard let next = words.next() else { throw refuse("options ends with '-c' and no setting") }
                setting = next
            } else if word.hasPrefix("-c") {
                setting = word.dropFirst(2)
            } else if word.hasPrefix("--") {
                setting = word.dropFirst(2)
            } else {
                throw refuse("options '\(options)' must be '-c name=value' settings")
            }
            let parts = setting.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw refuse("options setting '\(setting)' must be name=value")
            }
            settings.append((parts[0].replacingOccurrences(of: "-", with: "_"), String(parts[1])))
        }
        return settings
    }

    /// The words of an `options` value, split on spaces as PostgreSQL does: a backslash makes
    /// the next character part of the word (`-c default_transaction_isolation=repeatable\ read`).
    private static func words(of options: String) -> [Substring] {
        var words: [Substring] = []
        var word = ""
        var escaped = false
        var started = false
        for character in options {
            if escaped {
                word.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
                started = true
            } else if character == " " || character == "\t" {
                if started { words.append(Substring(word)) }
                word = ""
                started = false
            } else {
                word.append(character)
                started = true
            }
        }
        if started { words.append(Substring(word)) }
        return words
    }

    /// `text` with any password (in the user part, or a `password=` parameter) replaced, and
    /// without its fragment (never read). A password with an unencoded `/`, `?`, `#` or `@` is
    /// replaced too: the user part is taken to end at the last `@`.
    public static func redacted(_ text: String) -> String {
        var result = text
        if let scheme = result.range(of: "://"), let at = result[scheme.upperBound...].lastIndex(of: "@"),
            let colon = result[scheme.upperBound..<at].firstIndex(of: ":")
        {
            result.replaceSubrange(result.index(after: colon)..<at, with: "<redacted>")
        }
        if let hash = result.firstIndex(of: "#") { result = String(result[..<hash]) }
        if let question = result.firstIndex(of: "?") {
            let query = result[result.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false)
                .map { pair -> String in
                    pair.lowercased().hasPrefix("password=") ? "password=<redacted>" : String(pair)
                }
            result = String(result[...question]) + query.joined(separator: "&")
        }
        return result
    }

    /// Whether `text` has an `@` after its authority (the part before the first `/`, `?` or
    /// `#`): a sign that a password with an unencoded `/`, `?` or `#` was cut short there (or a
    /// parameter's value holds one, where it is plain text: `password=p@ss`).
    private static func hasAtAfterAuthority(_ text: String) -> Bool {
        guard let scheme = text.range(of: "://") else { return false }
        let rest = text[scheme.upperBound...]
        guard let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) else { return false }
        return rest[end...].contains("@")
    }
}

extension PostgresLocation: CustomReflectable {
    /// What `dump` and debuggers show: the description, never the password.
    public var customMirror: Mirror {
        Mirror(self, children: ["description": description], displayStyle: .struct)
    }
}
