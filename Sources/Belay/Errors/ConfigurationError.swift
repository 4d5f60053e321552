/// Invalid strategy options, reported when a pipeline (or a shared strategy object) is built.
///
/// Every problem is listed with the option at fault, e.g.
/// `retry.maxAttempts: must be at least 1 (got 0)`.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// One invalid option.
    public struct Issue: Sendable, Hashable, CustomStringConvertible {
        /// The option's path: the strategy's name, a dot, the option, e.g. `retry.maxAttempts`.
        public var option: String
        /// What is wrong with it.
        public var message: String

        /// Creates an issue.
        public init(option: String, message: String) {
            self.option = option
            self.message = message
        }

        public var description: String { "\(option): \(message)" }
    }

    /// Every problem found, in the order the options were checked.
    public var issues: [Issue]

    /// Creates an error from its issues.
    public init(issues: [Issue]) {
        self.issues = issues
    }

    public var description: String {
        "invalid resilience configuration: " + issues.map(\.description).joined(separator: "; ")
    }
}

/// Collects ``ConfigurationError/Issue``s while a configuration is checked.
struct OptionValidator {
    let prefix: String
    var issues: [ConfigurationError.Issue] = []

    init(prefix: String) {
        self.prefix = prefix
    }

    mutating func require(_ condition: Bool, _ option: String, _ message: @autoclosure () -> String) {
        if !condition {
            issues.append(.init(option: "\(prefix).\(option)", message: message()))
        }
    }

    mutating func atLeast(_ value: Int, _ minimum: Int, _ option: String) {
        require(value >= minimum, option, "must be at least \(minimum) (got \(value))")
    }

    mutating func positive(_ value: Duration, _ option: String) {
        require(value > .zero, option, "must be greater than zero (got \(value))")
    }

    mutating func nonNegative(_ value: Duration, _ option: String) {
        require(value >= .zero, option, "must not be negative (got \(value))")
    }

    mutating func ratio(_ value: Double, _ option: String) {
        require(value >= 0 && value <= 1, option, "must be between 0 and 1 (got \(value))")
    }

    mutating func name(_ value: String) {
        if value.isEmpty {
            issues.append(.init(option: "name", message: "must not be empty"))
        }
    }

    func check() throws(ConfigurationError) {
        if !issues.isEmpty {
            throw ConfigurationError(issues: issues)
        }
    }
}
