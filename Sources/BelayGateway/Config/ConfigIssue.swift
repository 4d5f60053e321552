/// One problem in a gateway config: where (key path and, when known, line) and what.
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    /// The key path, e.g. `upstreams.payments.retry.max_attempts`.
    public var path: String
    /// The 1-based line in the YAML file, when the parser reported one.
    public var line: Int?
    /// What is wrong, e.g. `must be at least 1 (got 0)`.
    public var message: String

    /// Creates an issue.
    public init(path: String, line: Int? = nil, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        let location = line.map { "line \($0): " } ?? ""
        return "\(location)\(path.isEmpty ? "(root)" : path): \(message)"
    }
}

/// A gateway config that cannot be used, with every problem found.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// Every problem, in file order.
    public var issues: [ConfigIssue]

    /// Creates an error from its issues.
    public init(issues: [ConfigIssue]) {
        self.issues = issues
    }

    public var description: String {
        let count = issues.count == 1 ? "1 problem" : "\(issues.count) problems"
        return "invalid config (\(count)):\n" + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}
