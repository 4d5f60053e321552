import Foundation
import Yams

extension UpstreamConfigReader {
    /// `upstreams.<name>.ack: { webhook, match, timeout, failure: { pointer, values } }`. The
    /// source's existence is checked once every section is read (``ConfigLoader/checkAcks(_:root:_:)``).
    func readAck(_ node: Node, at path: String, _ reader: inout ConfigReader) -> UpstreamConfig.Ack? {
        var source: String?
        var match: String?
        var failure: UpstreamConfig.Ack.Failure?
        var timeout: Duration?
        var valid = true
        let keys: Set<String> = ["webhook", "match", "timeout", "failure"]
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
            default: break
            }
        }
        guard let source else {
            reader.report(
                "\(path).webhook",
                node,
                "is required: the webhooks source whose verified events confirm this upstream's deliveries"
            )
            return nil
        }
        guard let match else {
            if !entries.contains(where: { $0.key == "match" }) {
                reader.report(
                    "\(path).match",
                    node,
                    "is required: the JSON pointer to the delivery's idempotency key in the event, e.g. /data/id"
                )
            }
            return nil
        }
        guard valid else { return nil }
        return UpstreamConfig.Ack(
            webhook: .init(source: source, match: match, failure: failure),
            timeout: timeout
        )
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
