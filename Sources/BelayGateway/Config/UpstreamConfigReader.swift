import Belay
import Foundation
import Yams

/// Reads one `upstreams.<name>` section.
struct UpstreamConfigReader {
    let name: String
    var path: String { "upstreams.\(name)" }

    static let keys: Set<String> = [
        "endpoints", "timeouts", "retry", "circuit_breaker", "bulkhead", "rate_limit", "cache", "idempotency",
        "headers",
        "probe", "tls", "ack", "hedging", "slo", "criticality", "fallback", "degrade",
    ]

    func read(_ node: Node, _ reader: inout ConfigReader) -> UpstreamConfig? {
        if !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            reader.report(path, node, "upstream names may use letters, digits, - and _ only")
            return nil
        }
        var upstream = UpstreamConfig(name: name, endpoints: [])
        var sawEndpoints = false
        var fallbackNode: Node?
        for (key, value) in reader.mapping(node, at: path, allowed: Self.keys) ?? [] {
            let keyPath = "\(path).\(key)"
            switch key {
            case "endpoints":
                sawEndpoints = true
                for (index, item) in (reader.sequence(value, at: keyPath) ?? []).enumerated() {
                    if let endpoint = endpoint(item, at: "\(keyPath)[\(index)]", &reader) {
                        upstream.endpoints.append(endpoint)
                    }
                }
                if reader.sequence(value, at: keyPath)?.isEmpty == true {
                    reader.report(keyPath, value, "must list at least one URL")
                }
            case "timeouts": readTimeouts(value, at: keyPath, into: &upstream, &reader)
            case "retry": readRetry(value, at: keyPath, into: &upstream, &reader)
            case "circuit_breaker": readBreaker(value, at: keyPath, into: &upstream, &reader)
            case "bulkhead": readBulkhead(value, at: keyPath, into: &upstream, &reader)
            case "rate_limit":
                upstream.rateLimit = reader.rateLimit(value, at: keyPath)
            case "cache":
                for (_, item) in reader.mapping(value, at: keyPath, allowed: ["stale_if_error"]) ?? [] {
                    upstream.staleIfError = reader.duration(item, at: "\(keyPath).stale_if_error")
                }
            case "idempotency":
                for (_, item) in reader.mapping(value, at: keyPath, allowed: ["header"]) ?? [] {
                    guard let header = reader.string(item, at: "\(keyPath).header") else { continue }
                    if Self.isToken(header) {
                        upstream.idempotencyHeader = header
                    } else {
                        reader.report("\(keyPath).header", item, "must be a header name (got '\(header)')")
                    }
                }
            case "headers":
                for (header, item) in reader.mapping(value, at: keyPath) ?? [] {
                    guard Self.isToken(header) else {
                        reader.report("\(keyPath).\(header)", item, "is not a valid header name")
                        continue
                    }
                    if let text = reader.headerValue(item, at: "\(keyPath).\(header)") {
                        upstream.headers.append((header, Secret(text)))
                    }
                }
            case "probe":
                var probePath = "/"
                var every: Duration = .seconds(60)
                for (field, item) in reader.mapping(value, at: keyPath, allowed: ["path", "every"]) ?? [] {
                    if field == "path", let text = reader.string(item, at: "\(keyPath).path") {
                        if !text.hasPrefix("/") {
                            reader.report("\(keyPath).path", item, "must start with / (got '\(text)')")
                        } else if let problem = DeliveryRequest.requestTargetProblem(text) {
                            reader.report("\(keyPath).path", item, problem)
                        } else {
                            probePath = text
                        }
                    }
                    if field == "every", let duration = reader.duration(item, at: "\(keyPath).every") {
                        if duration > .zero {
                            every = duration
                        } else {
                            reader.report("\(keyPath).every", item, "must be greater than 0")
                        }
                    }
                }
                upstream.probe = (probePath, every)
            case "tls": readTLS(value, at: keyPath, into: &upstream, &reader)
            case "ack": upstream.ack = readAck(value, at: keyPath, &reader)
            case "hedging": upstream.hedging = readHedging(value, at: keyPath, &reader)
            case "slo": upstream.slo = readSLO(value, at: keyPath, &reader)
            case "criticality":
                if let criticality = readCriticality(value, at: keyPath, &reader) { upstream.criticality = criticality }
            case "degrade":
                if let writes = readDegrade(value, at: keyPath, &reader) { upstream.degradeWrites = writes }
            case "fallback":
                if let fallback = readFallback(value, at: keyPath, &reader) {
                    upstream.fallback = fallback
                    fallbackNode = value
                }
            default: break
            }
        }
        if let fallbackNode, let fallback = upstream.fallback, upstream.degradeWrites == .queue,
            let write = fallback.methods.first(where: { !["GET", "HEAD", "OPTIONS", "TRACE"].contains($0) })
        {
            reader.report(
                "\(path).fallback.methods",
                fallbackNode,
                "lists \(write), a write degrade.writes: queue would queue: a write is either answered by the "
                    + "fallback or queued, not both (remove it from fallback.methods, or set degrade.writes: fail)"
            )
        }
        if let fallbackNode, upstream.criticality != .optional {
            reader.report(
                "\(path).fallback",
                fallbackNode,
                "needs criticality: optional: a critical upstream never answers a fallback (set \(path).criticality: "
                    + "optional, or remove fallback)"
            )
        }
        checkTLSEndpoints(upstream, root: node, &reader)
        if !sawEndpoints {
            reader.report("\(path).endpoints", node, "is required: list the upstream's base URLs in failover order")
        }
        return upstream.endpoints.isEmpty ? nil : upstream
    }

    private func endpoint(_ node: Node, at path: String, _ reader: inout ConfigReader) -> UpstreamConfig.Endpoint? {
        guard let components = reader.url(node, at: path), let scheme = components.scheme?.lowercased(),
            let host = components.host
        else { return nil }
        // As written: the path is sent percent-encoded, as the caller's path is joined to it.
        var basePath = components.percentEncodedPath
        while basePath.hasSuffix("/") { basePath.removeLast() }
        return .init(
            scheme: scheme,
            // Foundation reports an IPv6 host with its brackets on some platforms: keep it bare.
            host: host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host,
            port: components.port ?? (scheme == "https" ? 443 : 80),
            basePath: basePath
        )
    }

    /// Reads `timeouts`. Only values the user wrote can conflict: each default adapts to them
    /// (`attempt` defaults to 2s within `[connect, total]`, `total` to `max(10s, attempt)`,
    /// `connect` to `min(1s, attempt)`), so `attempt: 300ms` alone is valid.
    private func readTimeouts(
        _ node: Node,
        at path: String,
        into upstream: inout UpstreamConfig,
        _ reader: inout ConfigReader
    ) {
        var connect: Duration?
        var attempt: Duration?
        var total: Duration?
        for (key, value) in reader.mapping(node, at: path, allowed: ["connect", "attempt", "total"]) ?? [] {
            guard let duration = reader.duration(value, at: "\(path).\(key)") else { continue }
            switch key {
            case "connect": connect = duration
            case "attempt": attempt = duration
            case "total": total = duration
            default: break
            }
        }
        let format = ConfigDuration.format
        if let attempt, let total, attempt > total {
            reader.report(
                "\(path).attempt",
                nil,
                "must not exceed timeouts.total (\(format(attempt)) > \(format(total)))"
            )
        }
        if let connect, let attempt, connect > attempt {
            reader.report(
                "\(path).connect",
                nil,
                "must not exceed timeouts.attempt (\(format(connect)) > \(format(attempt)))"
            )
        }
        if attempt == nil, let connect, let total, connect > total {
            reader.report(
                "\(path).connect",
                nil,
                "must not exceed timeouts.total (\(format(connect)) > \(format(total)))"
            )
        }
        let defaults = UpstreamConfig.Timeouts()
        let chosenAttempt = attempt ?? min(max(defaults.attempt, connect ?? .zero), total ?? ConfigDuration.maximum)
        upstream.timeouts = UpstreamConfig.Timeouts(
            connect: connect ?? min(defaults.connect, chosenAttempt),
            attempt: chosenAttempt,
            total: total ?? max(defaults.total, chosenAttempt)
        )
    }

    private func readRetry(
        _ node: Node,
        at path: String,
        into upstream: inout UpstreamConfig,
        _ reader: inout ConfigReader
    ) {
        let keys: Set<String> = ["max_attempts", "base", "cap", "budget", "on"]
        var base: Duration?
        var cap: Duration?
        for (key, value) in reader.mapping(node, at: path, allowed: keys) ?? [] {
            let keyPath = "\(path).\(key)"
            switch key {
            case "max_attempts":
                if let count = reader.int(value, at: keyPath, atLeast: 1, atMost: 20) {
                    upstream.retry.maxAttempts = count
                }
            case "base":
                base = reader.duration(value, at: keyPath)
            case "cap":
                cap = reader.duration(value, at: keyPath)
            case "budget":
                if let ratio = reader.ratio(value, at: keyPath) { upstream.retry.budget = ratio }
            case "on":
                var conditions: [UpstreamConfig.Retry.Condition] = []
                for (index, item) in (reader.sequence(value, at: keyPath) ?? []).enumerated() {
                    guard let text = reader.string(item, at: "\(keyPath)[\(index)]") else { continue }
                    switch text {
                    case "connect": conditions.append(.connect)
                    case "reset": conditions.append(.reset)
                    case "timeout": conditions.append(.timeout)
                    default:
                        if let code = Int(text), (400...599).contains(code) {
                            conditions.append(.status(code))
                        } else {
                            reader.report(
                                "\(keyPath)[\(index)]",
                                item,
                                "must be a 4xx/5xx status or one of connect, reset, timeout (got '\(text)')"
                            )
                        }
                    }
                }
                upstream.retry.on = conditions
            default: break
            }
        }
        // Only values the user wrote conflict: `base` defaults to `min(100ms, cap)`, `cap` to
        // `max(5s, base)`.
        if let base, let cap, base > cap {
            let format = ConfigDuration.format
            reader.report("\(path).base", nil, "must not exceed retry.cap (\(format(base)) > \(format(cap)))")
        }
        let defaults = UpstreamConfig.Retry()
        upstream.retry.base = base ?? min(defaults.base, cap ?? defaults.base)
        upstream.retry.cap = cap ?? max(defaults.cap, upstream.retry.base)
    }

    private func readBreaker(
        _ node: Node,
        at path: String,
        into upstream: inout UpstreamConfig,
        _ reader: inout ConfigReader
    ) {
        let keys: Set<String> = [
            "failure_ratio", "minimum_throughput", "window", "break", "half_open_probes", "half_open_judgment",
        ]
        for (key, value) in reader.mapping(node, at: path, allowed: keys) ?? [] {
            let keyPath = "\(path).\(key)"
            switch key {
            case "failure_ratio":
                if let ratio = reader.ratio(value, at: keyPath) {
                    if ratio == 0 {
                        reader.report(keyPath, value, "must be greater than 0")
                    } else {
                        upstream.circuitBreaker.failureRatio = ratio
                    }
                }
            case "minimum_throughput":
                if let count = reader.int(value, at: keyPath, atLeast: 1, atMost: 1_000_000) {
                    upstream.circuitBreaker.minimumThroughput = count
                }
            case "window":
                if let duration = reader.duration(value, at: keyPath) { upstream.circuitBreaker.window = duration }
            case "break":
                if let duration = reader.duration(value, at: keyPath) {
                    upstream.circuitBreaker.breakDuration = duration
                }
            case "half_open_probes":
                if let count = reader.int(value, at: keyPath, atLeast: 1, atMost: 1_000) {
                    upstream.circuitBreaker.halfOpenProbes = count
                }
            case "half_open_judgment":
                guard let text = reader.string(value, at: keyPath) else { continue }
                // The YAML spelling names the key it judges by: `failure_ratio`.
                let known = HalfOpenJudgment.allCases.map { $0.rawValue.replacingOccurrences(of: "-", with: "_") }
                if let index = known.firstIndex(of: text) {
                    upstream.circuitBreaker.halfOpenJudgment = HalfOpenJudgment.allCases[index]
                } else {
                    reader.report(keyPath, value, "must be one of \(known.joined(separator: ", ")) (got '\(text)')")
                }
            default: break
            }
        }
    }

    /// An RFC 9110 token (header field name).
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty
            && text.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII
                    && (CharacterSet.alphanumerics.contains(scalar)
                        || "!#$%&'*+-.^_`|~".unicodeScalars.contains(scalar))
            }
    }
}
