public import Foundation

/// What `POST /v1/admin/reload` did: `200` when `outcome` is `applied`; a refusal is a
/// `422 config-invalid` problem with the same fields (``ReloadRefusal``).
public struct ReloadOutcomeView: Codable, Sendable, Equatable {
    /// `applied`.
    public var outcome: String
    /// `api` or `signal`.
    public var trigger: String
    public var at: Date
    /// What took effect: `consumers`, `upstreams.payments`, …
    public var applied: [String]
    /// What changed but waits for a restart: `server.listen`, …
    public var needsRestart: [String]
    public var problems: [ReloadProblem]

    public init(
        outcome: String,
        trigger: String,
        at: Date,
        applied: [String],
        needsRestart: [String],
        problems: [ReloadProblem]
    ) {
        self.outcome = outcome
        self.trigger = trigger
        self.at = at
        self.applied = applied
        self.needsRestart = needsRestart
        self.problems = problems
    }

    enum CodingKeys: String, CodingKey {
        case outcome, trigger, at, applied, problems
        case needsRestart = "needs_restart"
    }
}

/// One problem of a refused config: its key path, line and what is wrong.
public struct ReloadProblem: Codable, Sendable, Equatable {
    /// `upstreams.payments.retry.max_attempts`; empty for the file as a whole.
    public var path: String
    public var line: Int?
    public var message: String

    public init(path: String, line: Int?, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }
}

/// The `422 config-invalid` of a refused reload: the problem's fields and the outcome's.
public struct ReloadRefusal: Codable, Sendable, Equatable {
    public var code: String
    public var detail: String
    public var trigger: String
    public var at: Date
    public var problems: [ReloadProblem]

    public init(code: String, detail: String, trigger: String, at: Date, problems: [ReloadProblem]) {
        self.code = code
        self.detail = detail
        self.trigger = trigger
        self.at = at
        self.problems = problems
    }
}
