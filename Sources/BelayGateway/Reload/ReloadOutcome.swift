public import BelayAPI
public import Foundation

/// What came of one config reload: applied (with what took effect and what needs a restart)
/// or refused (with every problem). The answer of `POST /v1/admin/reload`, also logged.
public struct ReloadOutcome: Sendable, Hashable {
    /// Whether the reload took effect.
    public enum Status: String, Sendable, Hashable {
        /// The new config runs new requests (but for ``ReloadOutcome/needsRestart``).
        case applied
        /// Nothing changed; the running config is kept.
        case refused
    }

    /// What asked for the reload.
    public enum Trigger: String, Sendable, Hashable {
        /// SIGHUP.
        case signal
        /// `POST /v1/admin/reload`.
        case api
    }

    /// Applied or refused.
    public var status: Status
    /// SIGHUP or the route.
    public var trigger: Trigger
    /// When it was decided.
    public var at: Date
    /// The key paths that took effect (`upstreams.pay`, `consumers`, `server.tls`); empty when
    /// the file changed nothing that can change live.
    public var applied: [String]
    /// The key paths whose new values wait for a restart (`server.listen`); kept as running.
    public var needsRestart: [String]
    /// Why it was refused: every problem, each with its key path; empty when applied.
    public var problems: [ConfigIssue]

    /// Creates an outcome.
    public init(
        status: Status,
        trigger: Trigger,
        at: Date,
        applied: [String] = [],
        needsRestart: [String] = [],
        problems: [ConfigIssue] = []
    ) {
        self.status = status
        self.trigger = trigger
        self.at = at
        self.applied = applied
        self.needsRestart = needsRestart
        self.problems = problems
    }

    /// The outcome as one line of text, as it is logged: `config reload applied (upstreams.pay);
    /// needs a restart: server.listen`, or `config reload refused (2 problems): …`.
    public var summary: String {
        switch status {
        case .applied:
            let what = applied.isEmpty ? "nothing changed that can change live" : applied.joined(separator: ", ")
            let restart = needsRestart.isEmpty ? "" : "; needs a restart: " + needsRestart.joined(separator: ", ")
            return "config reload applied (\(what))\(restart)"
        case .refused:
            let count = problems.count == 1 ? "1 problem" : "\(problems.count) problems"
            return "config reload refused, running config kept (\(count)): "
                + problems.map(\.description).joined(separator: "; ")
        }
    }

    /// The outcome as the API answers it (``BelayAPI``): `applied`, `needs_restart`,
    /// `problems` (`path`, `line`, `message`), `trigger`, `at`.
    public var view: ReloadOutcomeView {
        ReloadOutcomeView(
            outcome: status.rawValue,
            trigger: trigger.rawValue,
            at: at,
            applied: applied,
            needsRestart: needsRestart,
            problems: problems.map { ReloadProblem(path: $0.path, line: $0.line, message: $0.message) }
        )
    }
}
