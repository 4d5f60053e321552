import Foundation
import Yams

/// Reads typed values out of a YAML node tree, collecting every problem with its key path
/// and line instead of stopping at the first.
struct ConfigReader {
    private(set) var issues: [ConfigIssue] = []
    let environment: [String: String]

    init(environment: [String: String]) {
        self.environment = environment
    }

    mutating func report(_ path: String, _ node: Node?, _ message: String) {
        issues.append(ConfigIssue(path: path, line: node?.mark?.line, message: message))
    }

    /// The entries of a mapping, in file order; reports keys outside `allowed`.
    mutating func mapping(_ node: Node?, at path: String, allowed: Set<String>? = nil) -> [(key: String, node: Node)]? {
        guard let node else { return nil }
        if node.null != nil {
            return []
        }
        guard let mapping = node.mapping else {
            report(path, node, "must be a mapping of keys to values")
            return nil
        }
        var entries: [(key: String, node: Node)] = []
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.string else {
                report(path, keyNode, "keys must be strings")
                continue
            }
            if let allowed, !allowed.contains(key) {
                let suggestion = Self.closest(key, in: allowed).map { "; did you mean '\($0)'?" } ?? ""
                report(
                    join(path, key),
                    keyNode,
                    "unknown key\(suggestion) (allowed: \(allowed.sorted().joined(separator: ", ")))"
                )
                continue
            }
            entries.append((key, valueNode))
        }
        return entries
    }

    mutating func sequence(_ node: Node, at path: String) -> [Node]? {
        if let sequence = node.sequence { return Array(sequence) }
        report(path, node, "must be a list")
        return nil
    }

    /// A scalar string with `${NAME}` replaced from the environment.
    mutating func string(_ node: Node, at path: String) -> String? {
        guard let scalar = node.scalar else {
            report(path, node, "must be a single value, not a list or mapping")
            return nil
        }
        return interpolate(scalar.string, node: node, at: path)
    }

    mutating func interpolate(_ text: String, node: Node, at path: String) -> String? {
        guard text.contains("${") else { return text }
        var result = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            result += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                report(path, node, "has an unterminated ${ in its value")
                return nil
            }
            let name = String(rest[open.upperBound..<close])
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                report(path, node, "has an invalid environment variable name '${\(name)}'")
                return nil
            }
            guard let value = environment[name] else {
                report(path, node, "refers to the environment variable \(name), which is not set")
                return nil
            }
            result += value
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }

    /// A whole number in `minimum...maximum`; one with more digits than an `Int` holds is out
    /// of range too, not malformed.
    mutating func int(_ node: Node, at path: String, atLeast minimum: Int, atMost maximum: Int = .max) -> Int? {
        guard let text = string(node, at: path) else { return nil }
        let range = maximum == .max ? "at least \(minimum)" : "between \(minimum) and \(maximum)"
        guard let value = Int(text) else {
            let digits = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
            if !digits.isEmpty && digits.allSatisfy({ $0.isASCII && $0.isNumber }) {
                report(path, node, "must be \(range) (got \(text))")
            } else {
                report(path, node, "must be a whole number (got '\(text)')")
            }
            return nil
        }
        guard value >= minimum, value <= maximum else {
            report(path, node, "must be \(range) (got \(value))")
            return nil
        }
        return value
    }

    /// A finite number in `range`, whose bounds `described` spells out for the message.
    mutating func number(_ node: Node, at path: String, in range: ClosedRange<Double>, described: String) -> Double? {
        guard let text = string(node, at: path) else { return nil }
        // NaN is in no range: `contains` is false for it, as for ±infinity.
        guard let value = Double(text), range.contains(value) else {
            report(path, node, "must be a number \(described) (got '\(text)')")
            return nil
        }
        return value
    }

    /// A `rate_limit: { rps, burst }` mapping; without `burst`, the burst is `rps` rounded up.
    mutating func rateLimit(_ node: Node, at path: String) -> GatewayConfig.RateLimit? {
        typealias Limit = GatewayConfig.RateLimit
        var rps: Double?
        var burst: Int?
        for (key, value) in mapping(node, at: path, allowed: ["rps", "burst"]) ?? [] {
            switch key {
            case "rps":
                rps = number(value, at: "\(path).rps", in: Limit.rpsRange, described: Limit.rpsRangeDescription)
            case "burst":
                burst = int(
                    value,
                    at: "\(path).burst",
                    atLeast: Limit.burstRange.lowerBound,
                    atMost: Limit.burstRange.upperBound
                )
            default: break
            }
        }
        guard let rps else {
            if !issues.contains(where: { $0.path == "\(path).rps" }) { report("\(path).rps", node, "is required") }
            return nil
        }
        return Limit(rps: rps, burst: burst ?? Limit.defaultBurst(rps: rps))
    }

    mutating func ratio(_ node: Node, at path: String) -> Double? {
        guard let text = string(node, at: path) else { return nil }
        guard let value = Double(text), value >= 0, value <= 1 else {
            report(path, node, "must be a number between 0 and 1 (got '\(text)')")
            return nil
        }
        return value
    }

    mutating func duration(_ node: Node, at path: String, allowZero: Bool = false) -> Duration? {
        guard let text = string(node, at: path) else { return nil }
        let value: Duration
        switch ConfigDuration.read(text) {
        case .success(let parsed): value = parsed
        case .failure(.malformed):
            report(path, node, "must be a duration such as 250ms, 5s, 20m, 4h or 1d (got '\(text)')")
            return nil
        case .failure(.outOfRange):
            report(path, node, "is out of range: at most 36500d (got '\(text)')")
            return nil
        }
        if !allowZero && value == .zero {
            report(path, node, "must be greater than zero")
            return nil
        }
        return value
    }

    mutating func byteSize(_ node: Node, at path: String) -> Int? {
        guard let text = string(node, at: path) else { return nil }
        switch ConfigByteSize.read(text) {
        case .success(let value) where value > 0:
            return value
        case .failure(.outOfRange):
            report(path, node, "is out of range (got '\(text)')")
            return nil
        case .success, .failure(.malformed):
            report(path, node, "must be a size such as 512KiB or 1MiB (got '\(text)')")
            return nil
        }
    }

    mutating func bool(_ node: Node, at path: String) -> Bool? {
        guard let text = string(node, at: path) else { return nil }
        switch text {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            report(path, node, "must be true or false (got '\(text)')")
            return nil
        }
    }

    private func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    /// The allowed key closest to a misspelt one (edit distance ≤ 2).
    static func closest(_ key: String, in allowed: Set<String>) -> String? {
        let scored = allowed.map { ($0, editDistance(key, $0)) }.filter { $0.1 <= 2 }
        return scored.min { $0.1 == $1.1 ? $0.0 < $1.0 : $0.1 < $1.1 }?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
