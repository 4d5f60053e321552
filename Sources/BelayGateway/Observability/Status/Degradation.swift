import Foundation

/// How much of an upstream its callers still get, as a level and a plain sentence a support
/// person can read aloud ("Pricing is showing values from 14 minutes ago."), derived from the
/// health model's state and the upstream's config (`criticality`, `cache`, `fallback`,
/// `degrade`). Shown on the status page and as `degradation` in `/v1/upstreams` and `/v1/status`.
struct Degradation: Sendable, Hashable {
    /// The level, in the words operators are given.
    enum Level: String, Sendable, Hashable {
        /// Everything works.
        case full
        /// It works, less well: degraded, or an optional upstream answered by its fallback.
        case partial
        /// Reads are answered from the cache; nothing new comes from it.
        case cached
        /// Down, but writes are accepted and queued (`degrade: { writes: queue }`).
        case minimal
        /// Down: calls to it fail.
        case unavailable
    }

    var level: Level
    var summary: String

    /// The upstream's name as a sentence starts it: `order_api` → `Order api`.
    static func title(_ name: String) -> String {
        let words = name.replacingOccurrences(of: "_", with: " ").replacingOccurrences(of: "-", with: " ")
        return words.prefix(1).uppercased() + words.dropFirst()
    }

    static func of(_ report: UpstreamHealthReport, config: UpstreamConfig?) -> Degradation {
        let name = title(report.name)
        let queues = config?.degradeWrites == .queue
        let optional = config?.criticality == .optional
        let queuedNote =
            queues ? " Writes sent with Prefer: respond-async are queued and delivered when it is back." : ""
        let fallback = Degradation(
            level: .partial,
            summary: "\(name) is unavailable; callers get its default answer instead"
                + (optional ? " (an optional dependency)." : ".") + queuedNote
        )
        switch report.state {
        case .healthy:
            return Degradation(level: .full, summary: "\(name) is working normally.")
        case .degraded:
            // The health model's words without its own frame: "degraded — …; still serving".
            var cause = Substring(report.reason)
            if cause.hasPrefix("degraded — ") { cause = cause.dropFirst("degraded — ".count) }
            if cause.hasSuffix("; still serving") { cause = cause.dropLast("; still serving".count) }
            return Degradation(level: .partial, summary: "\(name) is working, but less reliably than usual: \(cause).")
        case .stale:
            guard let age = report.staleAge else { return fallback }
            return Degradation(
                level: .cached,
                summary: "\(name) is showing values from \(HealthWords.span(age)) ago; new ones cannot be fetched "
                    + "until it recovers." + queuedNote
            )
        case .down:
            // An optional upstream with a fallback answers it to every read while down.
            if optional, config?.fallback != nil { return fallback }
            if queues {
                let reads =
                    config?.staleIfError != nil ? "reads are answered from the cache where it has them" : "reads fail"
                return Degradation(
                    level: .minimal,
                    summary: "\(name) is down: writes sent with Prefer: respond-async are queued and delivered when "
                        + "it is back; \(reads)."
                )
            }
            return Degradation(
                level: .unavailable,
                summary: "\(name) is unavailable: calls to it fail until it recovers."
                    + (optional ? " It is optional: the application can do without it." : "")
            )
        }
    }
}
