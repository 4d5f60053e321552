import BelayStore
import Foundation
public import HTTPTypes
public import Logging
import Synchronization

/// Keeps secrets out of logs, error bodies and management views: the values of sensitive
/// headers, and every secret the config holds wherever it shows up in text.
///
/// Sensitive headers are the built-ins (``builtInHeaders``: `Authorization`,
/// `Proxy-Authorization`, `Cookie`, `Set-Cookie`, `X-Api-Key`, `Api-Key`), the names listed in
/// `logging.redact_headers` and the names of every upstream's `headers:`. Secret values are
/// every upstream's `headers:` values (and the credential after a scheme such as `Bearer`),
/// webhook verification and forward secrets, OTLP exporter headers, alert sinks' keys and Slack
/// webhook URLs, and a PostgreSQL URL; those of
/// at least ``minimumSecretLength`` characters are replaced by `<redacted>` wherever they appear.
///
/// Copies share what they know: ``learn(from:)`` (a config reload) teaches every copy, and
/// every logger made by ``redacting(_:)``, the new config's sensitive headers and secrets. It
/// never forgets one: a secret the previous config held may still be in a record in flight.
///
/// ```swift
/// let redactor = Redactor(config: config)
/// let logger = redactor.redacting(logger)     // every record redacted before it is written
/// redactor.isSensitive(header: "Authorization") // true
/// redactor.learn(from: reloaded)              // its new header values are redacted from now on
/// ```
public struct Redactor: Sendable {
    /// What replaces a redacted value.
    public static let placeholder = "<redacted>"
    /// Headers whose values are always redacted (lowercased).
    public static let builtInHeaders: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
    ]
    /// Shorter secret values are not searched for in free text (they would match ordinary
    /// words); their headers are still redacted by name.
    public static let minimumSecretLength = 8

    /// What is redacted: the sensitive header names (lowercased) and the secret values
    /// searched for in text, longest first.
    private struct Tables: Sendable {
        var headers: Set<String>
        var secrets: [String]

        /// `headers` (any case) and `secrets` added: the secrets long enough to search for,
        /// and the credential alone after a scheme (`Bearer abc…`).
        mutating func add(headers names: [String], secrets values: [String]) {
            headers.formUnion(names.map { $0.lowercased() })
            var known = Set(secrets)
            for secret in values {
                let trimmed = secret.trimmingCharacters(in: .whitespaces)
                if trimmed.count >= Redactor.minimumSecretLength { known.insert(trimmed) }
                // "Bearer abc…", "Basic …": the credential alone may be logged too.
                if let space = trimmed.firstIndex(of: " ") {
                    let credential = trimmed[trimmed.index(after: space)...].trimmingCharacters(in: .whitespaces)
                    if credential.count >= Redactor.minimumSecretLength { known.insert(credential) }
                }
            }
            secrets = known.sorted { $0.count > $1.count }
        }
    }

    /// The tables every copy reads, and ``learn(from:)`` adds to.
    private final class Shared: Sendable {
        let tables: Mutex<Tables>
        init(_ tables: Tables) { self.tables = Mutex(tables) }
    }

    private let shared: Shared

    /// The sensitive header names, lowercased.
    public var headers: Set<String> { shared.tables.withLock { $0.headers } }

    /// A redactor for `headers` (any case; the built-ins are always included) and `secrets`.
    public init(headers: [String] = [], secrets: [String] = []) {
        var tables = Tables(headers: Self.builtInHeaders, secrets: [])
        tables.add(headers: headers, secrets: secrets)
        self.shared = Shared(tables)
    }

    /// The redactor of `config`: its sensitive headers and secret values (see the type's doc).
    public init(config: GatewayConfig) {
        let (headers, secrets) = Self.sensitive(in: config)
        self.init(headers: headers, secrets: secrets)
    }

    /// Adds `config`'s sensitive headers and secret values to what every copy of this redactor
    /// (and every logger it made) redacts; forgets none it knew.
    public func learn(from config: GatewayConfig) {
        let (headers, secrets) = Self.sensitive(in: config)
        shared.tables.withLock { $0.add(headers: headers, secrets: secrets) }
    }

    /// The sensitive header names and secret values of `config` (see the type's doc).
    private static func sensitive(in config: GatewayConfig) -> (headers: [String], secrets: [String]) {
        var headers = config.logging.redactHeaders
        var secrets: [String] = []
        for upstream in config.upstreams {
            for header in upstream.headers {
                headers.append(header.name)
                secrets.append(header.value.value)
            }
        }
        for source in config.webhooks {
            secrets += source.secrets.map(\.value)
            if let forward = source.forwardSecret { secrets.append(forward.value) }
        }
        if let otlp = config.telemetry.otlp {
            for header in otlp.headers {
                headers.append(header.name)
                secrets.append(header.value.value)
            }
        }
        // Alert sinks' PagerDuty and Opsgenie keys, and Slack webhook URLs (the URL is the credential).
        for sink in config.alerts { secrets += sink.secrets }
        if case .postgres(let url) = config.storage {
            secrets.append(url.value)
            // The password alone too: a driver's message may name it without the URL.
            if let password = (try? PostgresLocation(url: url.value))?.password {
                secrets.append(password)
            }
        }
        return (headers, secrets)
    }

    /// Whether the values of the header `name` (any case) are redacted.
    public func isSensitive(header name: String) -> Bool {
        let name = name.lowercased()
        return shared.tables.withLock { $0.headers.contains(name) }
    }

    /// `fields` with the values of sensitive headers replaced by ``placeholder``.
    public func redact(_ fields: HTTPFields) -> HTTPFields {
        var result = HTTPFields()
        for field in fields {
            let sensitive = isSensitive(header: field.name.canonicalName)
            result.append(sensitive ? HTTPField(name: field.name, value: Self.placeholder) : field)
        }
        return result
    }

    /// `text` with every secret value replaced by ``placeholder``, and the whole value after
    /// any sensitive header's name (`Authorization: …`, `cookie=…`) replaced too, however it
    /// is printed (see ``redactHeaderValues(in:)``): headers printed inside one string (a
    /// carrier, a description of `HTTPFields`, a JSON body) are redacted as well.
    public func redact(_ text: String) -> String {
        var result = redactHeaderValues(in: text)
        for secret in shared.tables.withLock({ $0.secrets }) where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: Self.placeholder)
        }
        return result
    }

    /// `metadata` with secret values replaced, and the values of keys naming a sensitive
    /// header replaced whole.
    public func redact(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var result = metadata
        for (key, value) in metadata {
            result[key] = isSensitive(header: key) ? .string(Self.placeholder) : redact(value)
        }
        return result
    }

    /// `value` with secret values replaced, recursively.
    public func redact(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(redact(text))
        case .stringConvertible(let convertible): .string(redact(convertible.description))
        case .array(let items): .array(items.map { redact($0) })
        case .dictionary(let dictionary): .dictionary(redact(dictionary))
        }
    }

    /// `logger` with every record redacted before its handler writes it (``RedactingLogHandler``).
    public func redacting(_ logger: Logger) -> Logger {
        let handler = logger.handler
        if handler is RedactingLogHandler { return logger }
        let redactor = self
        return Logger(label: logger.label) { _ in RedactingLogHandler(wrapping: handler, redactor: redactor) }
    }
}
