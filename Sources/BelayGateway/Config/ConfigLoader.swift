import BelayStore
import Foundation
import HTTPTypes
import Yams

/// Reads and validates `belay.yaml`, reporting every problem with its key path and line.
///
/// ```swift
/// let config = try ConfigLoader(environment: ProcessInfo.processInfo.environment)
///     .load(contentsOf: "belay.yaml")
/// ```
public struct ConfigLoader: Sendable {
    /// The variables `${NAME}` is replaced from.
    public var environment: [String: String]

    /// Creates a loader reading `${NAME}` from `environment`.
    public init(environment: [String: String]) {
        self.environment = environment
    }

    /// Reads and validates the file at `path`.
    public func load(contentsOf path: String) throws(ConfigError) -> GatewayConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(issues: [
                ConfigIssue(path: "", message: "cannot read \(path): \(error.localizedDescription)")
            ])
        }
        return try load(yaml: text)
    }

    /// Validates a config given as YAML text.
    public func load(yaml: String) throws(ConfigError) -> GatewayConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigError(issues: [
                ConfigIssue(path: "", line: Self.line(of: error), message: "not valid YAML: \(error)")
            ])
        } catch {
            throw ConfigError(issues: [ConfigIssue(path: "", message: "not valid YAML: \(error)")])
        }
        var reader = ConfigReader(environment: environment)
        var config = GatewayConfig()
        let sections: Set<String> = [
            "server", "storage", "consumers", "upstreams", "deliveries", "webhooks", "alerts", "metrics", "logging",
            "telemetry", "audit", "retention", "incidents",
        ]
        for (key, node) in reader.mapping(root, at: "", allowed: sections) ?? [] {
            switch key {
            case "server": readServer(node, into: &config, &reader)
            case "storage": readStorage(node, into: &config, &reader)
            case "consumers": readConsumers(node, into: &config, &reader)
            case "upstreams": readUpstreams(node, into: &config, &reader)
            case "deliveries": readDeliveries(node, into: &config, &reader)
            case "webhooks": readWebhooks(node, into: &config, &reader)
            case "alerts": readAlerts(node, into: &config, &reader)
            case "metrics": readMetrics(node, into: &config, &reader)
            case "logging": readLogging(node, into: &config, &reader)
            case "telemetry": readTelemetry(node, into: &config, &reader)
            case "audit": readAudit(node, into: &config, &reader)
            case "retention": readRetention(node, into: &config, &reader)
            case "incidents": readIncidents(node, into: &config, &reader)
            default: break
            }
        }
        resolveRetention(&config, root: root, &reader)
        crossCheck(config, root: root, &reader)
        checkAcks(config, root: root, &reader)
        guard reader.issues.isEmpty else {
            // File order: by line, keeping the order found within a line; issues with no line last.
            let ordered = reader.issues.enumerated().sorted { a, b in
                (a.element.line ?? .max, a.offset) < (b.element.line ?? .max, b.offset)
            }
            throw ConfigError(issues: ordered.map(\.element))
        }
        return config
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    // MARK: sections

    static let serverKeys: Set<String> = [
        "listen", "max_body", "header_timeout", "idle_timeout", "body_timeout", "drain", "instance", "tls",
    ]

    private func readServer(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        for (key, value) in reader.mapping(node, at: "server", allowed: Self.serverKeys) ?? [] {
            let path = "server.\(key)"
            switch key {
            case "listen":
                guard let text = reader.string(value, at: path) else { continue }
                if let address = Self.listenAddress(text) {
                    config.server.listen = address
                } else {
                    reader.report(path, value, "must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080 (got '\(text)')")
                }
            case "max_body":
                if let size = reader.byteSize(value, at: path) { config.server.maxBody = size }
            case "header_timeout":
                if let timeout = reader.duration(value, at: path) { config.server.headerTimeout = timeout }
            case "idle_timeout":
                if let timeout = reader.duration(value, at: path) { config.server.idleTimeout = timeout }
            case "body_timeout":
                if let timeout = reader.duration(value, at: path) { config.server.bodyTimeout = timeout }
            case "drain":
                guard let drain = reader.duration(value, at: path, allowZero: true) else { continue }
                if drain <= GatewayConfig.Server.maximumDrain {
                    config.server.drain = drain
                } else {
                    reader.report(
                        path,
                        value,
                        "must be at most 10m: a stop keeps serving this long before the listener closes "
                            + "(got '\(value.string ?? "")')"
                    )
                }
            case "tls": readServerTLS(value, into: &config, &reader)
            case "instance":
                guard let name = reader.string(value, at: path) else { continue }
                if (1...64).contains(name.count),
                    name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) })
                {
                    config.server.instanceName = name
                } else {
                    reader.report(
                        path,
                        value,
                        "an instance name must be 1 to 64 ASCII letters, digits, '-', '_', '.' or ':'"
                    )
                }
            default: break
            }
        }
    }

    static func listenAddress(_ text: String) -> GatewayConfig.ListenAddress? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return nil
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (0...65_535).contains(port) else { return nil }
        return GatewayConfig.ListenAddress(host: String(host), port: port)
    }

    private func readStorage(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        for (key, value) in reader.mapping(node, at: "storage", allowed: ["url"]) ?? [] {
            guard let text = reader.string(value, at: "storage.url") else { continue }
            if text.hasPrefix("sqlite:") {
                let path = String(text.dropFirst("sqlite:".count))
                if path.isEmpty {
                    reader.report("storage.\(key)", value, "names no file: use sqlite:./belay-data/belay.db")
                } else {
                    config.storage = .sqlite(path: path)
                }
            } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
                // Read now, so check-config finds what serve would refuse; the problem never
                // repeats the URL (it holds the password).
                do {
                    _ = try PostgresLocation(url: text)
                    config.storage = .postgres(url: Secret(text))
                } catch {
                    let why = error.message.components(separatedBy: ": ").dropFirst().joined(separator: ": ")
                    reader.report("storage.\(key)", value, why.isEmpty ? "is not a PostgreSQL URL Belay can use" : why)
                }
            } else {
                reader.report("storage.\(key)", value, "must start with sqlite: or postgres://")
            }
        }
    }

    private func readConsumers(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        // Each key hash (lowercase) and the consumer that has it, with its line.
        var keyOwners: [String: (path: String, line: Int?)] = [:]
        for (name, value) in reader.mapping(node, at: "consumers") ?? [] {
            let path = "consumers.\(name)"
            // A name owns deliveries and audit records; the empty name is Belay's own (webhook
            // forwards, open mode), so it and names with odd characters are refused.
            guard (1...64).contains(name.count),
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
            else {
                reader.report(path, value, "a consumer's name must be 1 to 64 ASCII letters, digits, '-', '_' or '.'")
                continue
            }
            var keyHash: String?
            var keyNode: Node?
            var scopes: [String] = []
            var rateLimit: GatewayConfig.RateLimit?
            for (key, field) in reader.mapping(value, at: path, allowed: ["key_sha256", "scopes", "rate_limit"]) ?? [] {
                switch key {
                case "key_sha256":
                    guard let text = reader.string(field, at: "\(path).key_sha256") else { continue }
                    let lowered = text.lowercased()
                    if lowered.count == 64, lowered.allSatisfy({ $0.isASCII && $0.isHexDigit }) {
                        keyHash = lowered
                        keyNode = field
                    } else {
                        reader.report("\(path).key_sha256", field, "must be 64 hex digits (the SHA-256 of the API key)")
                    }
                case "scopes":
                    for (index, item) in (reader.sequence(field, at: "\(path).scopes") ?? []).enumerated() {
                        guard let scope = reader.string(item, at: "\(path).scopes[\(index)]") else { continue }
                        if Self.knownScopes.contains(scope) || scope.hasPrefix("proxy:") && scope.count > 6 {
                            scopes.append(scope)
                        } else {
                            reader.report(
                                "\(path).scopes[\(index)]",
                                item,
                                "unknown scope '\(scope)' (known: proxy:*, proxy:<upstream>, \(Self.knownScopes.sorted().joined(separator: ", ")))"
                            )
                        }
                    }
                case "rate_limit":
                    rateLimit = reader.rateLimit(field, at: "\(path).rate_limit")
                default: break
                }
            }
            guard let keyHash else {
                if !reader.issues.contains(where: { $0.path == "\(path).key_sha256" }) {
                    reader.report("\(path).key_sha256", value, "is required")
                }
                continue
            }
            // Two consumers with one key: the key would authenticate as only one of them, so which
            // scopes it carries would depend on the file's order.
            if let owner = keyOwners[keyHash] {
                let line = owner.line.map { " (line \($0))" } ?? ""
                reader.report(
                    "\(path).key_sha256",
                    keyNode,
                    "is the same key as \(owner.path)\(line): each consumer needs its own key"
                )
                continue
            }
            keyOwners[keyHash] = ("\(path).key_sha256", keyNode?.mark?.line)
            config.consumers.append(.init(name: name, keySHA256: keyHash, scopes: scopes, rateLimit: rateLimit))
        }
    }

    static let knownScopes: Set<String> = [
        "proxy:*", "deliveries:read", "deliveries:write", "deliveries:ack", "webhooks:read", "webhooks:write",
        "upstreams:read", "metrics:read", "status:read",
        "requests:read", "admin",
    ]

    private func readUpstreams(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        for (name, value) in reader.mapping(node, at: "upstreams") ?? [] {
            if let upstream = UpstreamConfigReader(name: name).read(value, &reader) {
                config.upstreams.append(upstream)
            }
        }
    }

    private func readMetrics(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        for (key, value) in reader.mapping(node, at: "metrics", allowed: ["enabled"]) ?? [] {
            if key == "enabled", let enabled = reader.bool(value, at: "metrics.enabled") {
                config.metrics.enabled = enabled
            }
        }
    }

    private func readDeliveries(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        var notifyAfter: Int?
        for (key, value) in reader.mapping(
            node,
            at: "deliveries",
            allowed: ["schedule", "notify_after", "ack_timeout", "key_retention", "concurrency"]
        ) ?? [] {
            let path = "deliveries.\(key)"
            switch key {
            case "schedule":
                let items = reader.sequence(value, at: path) ?? []
                if items.isEmpty { reader.report(path, value, "must list at least one delay") }
                var schedule: [Duration] = []
                for (index, item) in items.enumerated() {
                    if let delay = reader.duration(item, at: "\(path)[\(index)]", allowZero: true) {
                        schedule.append(delay)
                    }
                }
                if !schedule.isEmpty { config.deliveries.schedule = schedule }
            case "notify_after":
                notifyAfter = readNotifyAfter(value, at: path, into: &config.deliveries, &reader)
            case "ack_timeout":
                if let timeout = reader.duration(value, at: path) { config.deliveries.ackTimeout = timeout }
            case "key_retention":
                if let retention = reader.duration(value, at: path) { config.deliveries.keyRetention = retention }
            case "concurrency":
                if let count = reader.int(value, at: path, atLeast: 1, atMost: 10_000) {
                    config.deliveries.concurrency = count
                }
            default: break
            }
        }
        // The default adapts to a shorter schedule; a value the user wrote must fit it.
        let attempts = config.deliveries.schedule.count
        if let notifyAfter {
            if notifyAfter > attempts {
                reader.report(
                    "deliveries.notify_after",
                    nil,
                    "must not exceed the \(attempts) attempts of deliveries.schedule (got \(notifyAfter))"
                )
            } else {
                config.deliveries.notifyAfter = notifyAfter
            }
        } else {
            config.deliveries.notifyAfter = min(config.deliveries.notifyAfter, attempts)
        }
    }

    private func readWebhooks(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        typealias Source = GatewayConfig.WebhookSource
        for (name, value) in reader.mapping(node, at: "webhooks") ?? [] {
            let path = "webhooks.\(name)"
            let verifyPath = "\(path).verify"
            var scheme: Source.Scheme?
            var secrets: [(secret: Secret, path: String, node: Node)] = []
            var tolerance: Duration = .seconds(300)
            var forwardTo: String?
            var forwardSecret: Secret?
            var idPointer: String?
            var orderBy: String?
            var replayWindow: (duration: Duration, node: Node)?
            // The hmac scheme's keys, checked once the scheme is known (it may come after them).
            var hmacKeys: [(key: String, node: Node)] = []
            var header: String?
            var algorithm = Source.HMACOptions.Algorithm.sha256
            var encoding = Source.HMACOptions.Encoding.hex
            var prefix: String?
            var idHeader: String?
            var fetchUpstream: (name: String, node: Node)?
            var fetchPath: (template: String, node: Node)?
            var fetchPathGiven = false
            for (key, field) in reader.mapping(
                value,
                at: path,
                allowed: ["verify", "forward_to", "forward_secret", "order_by", "replay_window"]
            ) ?? [] {
                switch key {
                case "verify":
                    for (verifyKey, item) in reader.mapping(
                        field,
                        at: verifyPath,
                        allowed: [
                            "scheme", "secret", "secrets", "tolerance", "header", "algorithm", "encoding", "prefix",
                            "id_header", "id_pointer", "upstream", "path",
                        ]
                    ) ?? [] {
                        let itemPath = "\(verifyPath).\(verifyKey)"
                        switch verifyKey {
                        case "scheme":
                            guard let text = reader.string(item, at: itemPath) else { continue }
                            scheme = .init(rawValue: text)
                            if scheme == nil {
                                let known = Source.Scheme.allCases.map(\.rawValue).joined(separator: ", ")
                                reader.report(itemPath, item, "unknown scheme '\(text)' (known: \(known))")
                            }
                        case "secret":
                            if let secret = reader.string(item, at: itemPath), !secret.isEmpty {
                                secrets.append((Secret(secret), itemPath, item))
                            }
                        case "secrets":
                            for (index, entry) in (reader.sequence(item, at: itemPath) ?? []).enumerated() {
                                if let secret = reader.string(entry, at: "\(itemPath)[\(index)]") {
                                    secrets.append((Secret(secret), "\(itemPath)[\(index)]", entry))
                                }
                            }
                        case "tolerance":
                            if let duration = reader.duration(item, at: itemPath) { tolerance = duration }
                        case "header", "id_header":
                            hmacKeys.append((verifyKey, item))
                            guard let text = reader.string(item, at: itemPath) else { continue }
                            if HTTPField.Name(text) == nil {
                                reader.report(itemPath, item, "must be an HTTP header name (got '\(text)')")
                            } else if verifyKey == "header" {
                                header = text
                            } else {
                                idHeader = text
                            }
                        case "algorithm":
                            hmacKeys.append((verifyKey, item))
                            guard let text = reader.string(item, at: itemPath) else { continue }
                            if let value = Source.HMACOptions.Algorithm(rawValue: text) {
                                algorithm = value
                            } else {
                                reader.report(itemPath, item, "must be sha256 or sha512 (got '\(text)')")
                            }
                        case "encoding":
                            hmacKeys.append((verifyKey, item))
                            guard let text = reader.string(item, at: itemPath) else { continue }
                            if let value = Source.HMACOptions.Encoding(rawValue: text) {
                                encoding = value
                            } else {
                                reader.report(itemPath, item, "must be hex or base64 (got '\(text)')")
                            }
                        case "prefix":
                            hmacKeys.append((verifyKey, item))
                            if let text = reader.string(item, at: itemPath), !text.isEmpty { prefix = text }
                        case "upstream":
                            if let text = reader.string(item, at: itemPath) { fetchUpstream = (text, item) }
                        case "path":
                            fetchPathGiven = true
                            guard let text = reader.string(item, at: itemPath) else { continue }
                            do {
                                _ = try PathTemplate(text)
                                fetchPath = (text, item)
                            } catch {
                                reader.report(itemPath, item, error.message)
                            }
                        case "id_pointer":
                            guard let text = reader.string(item, at: itemPath) else { continue }
                            do {
                                _ = try JSONPointer(text)
                                idPointer = text
                            } catch {
                                reader.report(itemPath, item, error.message)
                            }
                        default: break
                        }
                    }
                case "order_by":
                    guard let text = reader.string(field, at: "\(path).order_by") else { continue }
                    do {
                        _ = try JSONPointer(text)
                        orderBy = text
                    } catch {
                        reader.report("\(path).order_by", field, error.message)
                    }
                case "replay_window":
                    if let window = reader.duration(field, at: "\(path).replay_window") {
                        replayWindow = (window, field)
                    }
                case "forward_to":
                    if let url = reader.url(field, at: "\(path).forward_to") { forwardTo = url.string }
                case "forward_secret":
                    guard let secret = reader.string(field, at: "\(path).forward_secret") else { continue }
                    switch StandardWebhooksKey.parse(secret, allowPublicKey: false) {
                    case .success: forwardSecret = Secret(secret)
                    case .failure(let invalid): reader.report("\(path).forward_secret", field, invalid.message)
                    }
                default: break
                }
            }
            guard let scheme else {
                reader.report("\(verifyPath).scheme", value, "is required")
                continue
            }
            if secrets.isEmpty {
                reader.report("\(verifyPath).secret", value, "is required")
                continue
            }
            var valid = true
            if scheme == .standardWebhooks {
                for entry in secrets {
                    if case .failure(let invalid) = StandardWebhooksKey.parse(entry.secret.value, allowPublicKey: true)
                    {
                        reader.report(entry.path, entry.node, invalid.message)
                        valid = false
                    }
                }
            }
            var hmac: Source.HMACOptions?
            if scheme == .hmac {
                if let header {
                    hmac = .init(
                        header: header,
                        algorithm: algorithm,
                        encoding: encoding,
                        prefix: prefix,
                        idHeader: idHeader
                    )
                } else if !hmacKeys.contains(where: { $0.key == "header" }) {
                    reader.report("\(verifyPath).header", value, "is required for scheme hmac")
                }
                if idHeader != nil && idPointer != nil {
                    reader.report(
                        "\(verifyPath).id_header",
                        hmacKeys.first { $0.key == "id_header" }?.node,
                        "set id_header or id_pointer, not both"
                    )
                    valid = false
                } else if idHeader == nil && idPointer == nil && !hmacKeys.contains(where: { $0.key == "id_header" }) {
                    reader.report(
                        "\(verifyPath).id_header",
                        value,
                        "is required for scheme hmac unless id_pointer is set: events are deduplicated by their id"
                    )
                    valid = false
                }
                valid = valid && hmac != nil
            } else {
                for (key, node) in hmacKeys {
                    reader.report(
                        "\(verifyPath).\(key)",
                        node,
                        "applies to scheme hmac only (this source is \(scheme.rawValue))"
                    )
                    valid = false
                }
            }
            if let replayWindow, scheme == .standardWebhooks || scheme == .stripe {
                reader.report(
                    "\(path).replay_window",
                    replayWindow.node,
                    "applies to schemes github and hmac only: \(scheme.rawValue) signs a timestamp, and verify.tolerance "
                        + "bounds its replays"
                )
                valid = false
            }
            var currentState: Source.CurrentState?
            switch (fetchUpstream, fetchPath) {
            case (let upstream?, let template?):
                currentState = .init(upstream: upstream.name, path: template.template)
                if forwardTo == nil {
                    reader.report(
                        "\(path).forward_to",
                        value,
                        "is required with verify.upstream: the current state is fetched for each forward"
                    )
                    valid = false
                }
            case (let upstream?, nil) where !fetchPathGiven:
                reader.report(
                    "\(verifyPath).path",
                    upstream.node,
                    "is required with verify.upstream, e.g. \"/v1/charges/{/data/object/id}\""
                )
                valid = false
            case (nil, let template?):
                reader.report("\(verifyPath).upstream", template.node, "is required with verify.path")
                valid = false
            case (_?, nil):
                valid = false
            case (nil, nil):
                break
            }
            guard valid else { continue }
            config.webhooks.append(
                .init(
                    name: name,
                    scheme: scheme,
                    secrets: secrets.map(\.secret),
                    tolerance: tolerance,
                    forwardTo: forwardTo,
                    forwardSecret: forwardSecret,
                    hmac: hmac,
                    idPointer: idPointer,
                    orderBy: orderBy,
                    currentState: currentState,
                    replayWindow: replayWindow?.duration ?? .seconds(86_400)
                )
            )
        }
    }

    /// The smallest `audit.max_size`: room for a few thousand records.
    static let minimumAuditSize = 1 << 20

    private func readAudit(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        for (key, value) in reader.mapping(node, at: "audit", allowed: ["enabled", "retention", "max_size"]) ?? [] {
            let path = "audit.\(key)"
            switch key {
            case "enabled":
                if let enabled = reader.bool(value, at: path) { config.audit.enabled = enabled }
            case "retention":
                if let retention = reader.duration(value, at: path) { config.audit.retention = retention }
            case "max_size":
                guard let size = reader.byteSize(value, at: path) else { continue }
                if size < Self.minimumAuditSize {
                    reader.report(path, value, "must be at least 1MiB (got '\(value.string ?? "")')")
                } else {
                    config.audit.maxSize = size
                }
            default: break
            }
        }
    }

    /// `incidents: { close_after: 5m }`: from 1 second (a drill's postmortem within the minute)
    /// to 24 hours.
    private func readIncidents(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        for (key, value) in reader.mapping(node, at: "incidents", allowed: ["close_after"]) ?? [] {
            let path = "incidents.\(key)"
            guard let closeAfter = reader.duration(value, at: path) else { continue }
            if closeAfter < .seconds(1) || closeAfter > .seconds(86_400) {
                reader.report(path, value, "must be from 1s to 24h (got '\(value.string ?? "")')")
            } else {
                config.incidents.closeAfter = closeAfter
            }
        }
    }

    private func crossCheck(_ config: GatewayConfig, root: Node?, _ reader: inout ConfigReader) {
        if config.consumers.isEmpty && !config.server.listen.isLoopback {
            reader.report(
                "server.listen",
                root?["server"]?["listen"],
                "open mode (no consumers configured) is allowed on loopback only; configure consumers or listen on 127.0.0.1"
            )
        }
        let upstreamNames = Set(config.upstreams.map(\.name))
        for source in config.webhooks {
            if let upstream = source.currentState?.upstream, !upstreamNames.contains(upstream) {
                reader.report(
                    "webhooks.\(source.name).verify.upstream",
                    root?["webhooks"]?[source.name]?["verify"]?["upstream"],
                    "names the unknown upstream '\(upstream)'"
                )
            }
        }
        for consumer in config.consumers {
            for scope in consumer.scopes where scope.hasPrefix("proxy:") && scope != "proxy:*" {
                let upstream = String(scope.dropFirst("proxy:".count))
                if !upstreamNames.contains(upstream) {
                    reader.report("consumers.\(consumer.name).scopes", nil, "names the unknown upstream '\(upstream)'")
                }
            }
        }
    }
}
