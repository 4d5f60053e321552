import Foundation
import Yams

extension UpstreamConfigReader {
    /// `upstreams.<name>.ack: { webhook, match, timeout, failure: { pointer, values }, poll: { path,
    /// every, until } }`: a webhook, a poll, or both. The source's existence is checked once every
    /// section is read (``ConfigLoader/checkAcks(_:root:_:)``).
    func readAck(_ node: Node, at path: String, _ reader: inout ConfigReader) -> UpstreamConfig.Ack? {
        var source: String?
        var match: String?
        var failure: UpstreamConfig.Ack.Failure?
        var poll: UpstreamConfig.Ack.Poll?
        var timeout: Duration?
        var valid = true
        let keys: Set<String> = ["webhook", "match", "timeout", "failure", "poll"]
        guard let entries = reader.mapping(node, at: path, allowed: keys) else { return nil }
        for (key, value) in entries {
            let keyPath = "\(path).\(key)"
            switch key {
            case "webhook":
                source = reader.string(value, at: keyPath)
                if source?.isEmpty == true {
                    reader.report(keyPath, value, "must name a webhooks source")
                    valid = false
                }
            case "match":
                match = Self.pointer(value, at: keyPath, &reader)
                if match == nil { valid = false }
            case "timeout":
                // A zero is refused by the duration reader; a negative is not a duration.
                timeout = reader.duration(value, at: keyPath)
                if timeout == nil { valid = false }
            case "failure":
                failure = readFailure(value, at: keyPath, &reader)
                if failure == nil { valid = false }
            case "poll":
                poll = readPoll(value, at: keyPath, &reader)
                if poll == nil { valid = false }
            default: break
            }
        }
        let written = Set(entries.map(\.key))
        guard source != nil || poll != nil else {
            if valid {
                reader.report(
                    "\(path).webhook",
                    node,
                    "is required: the webhooks source whose verified events confirm this upstream's deliveries "
                        + "(or set poll: { path: \"/v1/orders/{key}\" } to look each order up)"
                )
            }
            return nil
        }
        if source == nil {
            // `match` and `failure` read the webhook's events: without one they would be ignored.
            for key in ["match", "failure"] where written.contains(key) {
                reader.report(
                    "\(path).\(key)",
                    node,
                    "applies to a webhook confirmation; set \(path).webhook too, or remove it"
                )
                valid = false
            }
        }
        guard valid else { return nil }
        guard let source else { return UpstreamConfig.Ack(poll: poll, timeout: timeout) }
        guard let match else {
            reader.report(
                "\(path).match",
                node,
                "is required: the JSON pointer to the delivery's idempotency key in the event, e.g. /data/id"
            )
            return nil
        }
        return UpstreamConfig.Ack(
            webhook: .init(source: source, match: match, failure: failure),
            poll: poll,
            timeout: timeout
        )
    }

    /// `poll: { path: "/v1/orders/{key}", every: 5m, until: [200] }`.
    private func readPoll(_ node: Node, at path: String, _ reader: inout ConfigReader) -> UpstreamConfig.Ack.Poll? {
        var target: String?
        var every: Duration = .seconds(300)
        var until: Set<Int> = [200]
        var valid = true
        guard let entries = reader.mapping(node, at: path, allowed: ["path", "every", "until"]) else { return nil }
        for (key, value) in entries {
            let keyPath = "\(path).\(key)"
            switch key {
            case "path":
                guard let text = reader.string(value, at: keyPath) else {
                    valid = false
                    continue
                }
                if let problem = Self.pollPathProblem(text) {
                    reader.report(keyPath, value, problem)
                    valid = false
                } else {
                    target = text
                }
            case "every":
                if let duration = reader.duration(value, at: keyPath) {
                    if duration < .seconds(1) {
                        reader.report(
                            keyPath,
                            value,
                            "must be at least 1s: a lookup per delivery that often is a flood"
                        )
                        valid = false
                    } else {
                        every = duration
                    }
                } else {
                    valid = false
                }
            case "until":
                var statuses: Set<Int> = []
                for (index, item) in (reader.sequence(value, at: keyPath) ?? []).enumerated() {
                    guard let status = reader.int(item, at: "\(keyPath)[\(index)]", atLeast: 200, atMost: 299) else {
                        valid = false
                        continue
                    }
                    statuses.insert(status)
                }
                if statuses.isEmpty {
                    if valid {
                        reader.report(keyPath, value, "must list at least one 2xx status that means the order is there")
                    }
                    valid = false
                } else {
                    until = statuses
                }
            default: break
            }
        }
        guard let target else {
            if valid {
                reader.report(
                    "\(path).path",
                    node,
                    "is required: the path that answers whether an order is there, with {key} for its idempotency key, "
                        + "e.g. /v1/orders/{key}"
                )
            }
            return nil
        }
        guard valid else { return nil }
        return .init(path: target, every: every, until: until)
    }

    /// Why `text` cannot be a lookup path, if it cannot.
    static func pollPathProblem(_ text: String) -> String? {
        guard text.hasPrefix("/") else { return "must start with '/' (it is below the upstream's base path)" }
        guard text.contains("{key}") else {
            return "must contain {key}, where each delivery's idempotency key goes (e.g. /v1/orders/{key})"
        }
        if text.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F || $0.value > 0x7E }) {
            return "must be printable ASCII without spaces (percent-encode anything else)"
        }
        if text.contains("#") { return "must not hold a fragment ('#')" }
        let rest = text.replacingOccurrences(of: "{key}", with: "")
        if rest.contains("{") || rest.contains("}") { return "knows only the placeholder {key}" }
        return nil
    }

    private func readFailure(_ node: Node, at path: String, _ reader: inout ConfigReader) -> UpstreamConfig.Ack.Failure?
    {
        var pointer: String?
        var values: [String] = []
        var sawValues = false
        for (key, value) in reader.mapping(node, at: path, allowed: ["pointer", "values"]) ?? [] {
            let keyPath = "\(path).\(key)"
            if key == "pointer" {
                pointer = Self.pointer(value, at: keyPath, &reader)
                if pointer == nil { return nil }
            } else if key == "values" {
                sawValues = true
                for (index, item) in (reader.sequence(value, at: keyPath) ?? []).enumerated() {
                    if let text = reader.string(item, at: "\(keyPath)[\(index)]") { values.append(text) }
                }
            }
        }
        guard let pointer else {
            reader.report("\(path).pointer", node, "is required: the JSON pointer to the value that tells a rejection")
            return nil
        }
        guard !values.isEmpty else {
            if !sawValues || !reader.issues.contains(where: { $0.path.hasPrefix("\(path).values") }) {
                reader.report("\(path).values", node, "must list at least one value that means rejected")
            }
            return nil
        }
        return .init(pointer: pointer, values: values)
    }

    /// A JSON pointer (RFC 6901) to a member inside the event: not the empty pointer (the
    /// whole document is never a key).
    private static func pointer(_ node: Node, at path: String, _ reader: inout ConfigReader) -> String? {
        guard let text = reader.string(node, at: path) else { return nil }
        do {
            _ = try JSONPointer(text)
        } catch {
            reader.report(path, node, error.message)
            return nil
        }
        guard !text.isEmpty else {
            reader.report(
                path,
                node,
                "must point inside the event, e.g. /data/id (the empty pointer is the whole event)"
            )
            return nil
        }
        return text
    }
}

extension ConfigLoader {
    /// Each `ack.webhook` names a configured webhooks source.
    func checkAcks(_ config: GatewayConfig, root: Node?, _ reader: inout ConfigReader) {
        let sources = Set(config.webhooks.map(\.name))
        for upstream in config.upstreams {
            guard let source = upstream.ack?.webhook?.source, !sources.contains(source) else { continue }
            let known = sources.sorted().joined(separator: ", ")
            reader.report(
                "upstreams.\(upstream.name).ack.webhook",
                root?["upstreams"]?[upstream.name]?["ack"]?["webhook"],
                "names the unknown webhooks source '\(source)'"
                    + (known.isEmpty ? " (no webhooks are configured)" : " (configured: \(known))")
            )
        }
    }

    static let notifyAfterForms =
        "must be a number of failed attempts such as 3, a duration such as 20m, or { attempts: 3, after: 20m }"

    /// `deliveries.notify_after`: a number of failed attempts (`3`), a duration since the first
    /// failed attempt (`20m`), or both (`{ attempts: 3, after: 20m }`: whichever comes first).
    /// Sets ``GatewayConfig/Deliveries/notifyAge`` and returns the attempts written, if any; a
    /// duration alone turns the count off (it is then the schedule's length: never reached).
    func readNotifyAfter(
        _ node: Node,
        at path: String,
        into deliveries: inout GatewayConfig.Deliveries,
        _ reader: inout ConfigReader
    ) -> Int? {
        if node.mapping != nil {
            var attempts: Int?
            var age: Duration?
            var written = false
            for (key, value) in reader.mapping(node, at: path, allowed: ["attempts", "after"]) ?? [] {
                written = true
                if key == "attempts" {
                    attempts = reader.int(value, at: "\(path).attempts", atLeast: 1, atMost: 1_000)
                } else if key == "after" {
                    age = reader.duration(value, at: "\(path).after")
                }
            }
            if !written { reader.report(path, node, Self.notifyAfterForms) }
            deliveries.notifyAge = age
            if attempts == nil && age != nil { deliveries.notifyAfter = .max }
            return attempts
        }
        guard let text = node.scalar?.string else {
            reader.report(path, node, Self.notifyAfterForms)
            return nil
        }
        let digits = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
        if !digits.isEmpty && digits.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return reader.int(node, at: path, atLeast: 1, atMost: 1_000)
        }
        guard ConfigDuration.parse(text) != nil else {
            reader.report(path, node, Self.notifyAfterForms + " (got '\(text)')")
            return nil
        }
        if let age = reader.duration(node, at: path) {
            deliveries.notifyAge = age
            deliveries.notifyAfter = .max
        }
        return nil
    }
}
