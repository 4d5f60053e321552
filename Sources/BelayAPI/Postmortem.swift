package import Foundation

/// A postmortem draft of an incident in Markdown: the summary, impact and timeline filled in
/// from what Belay observed, the parts only people know left as prompts.
/// `GET /v1/incidents/{id}` with `Accept: text/markdown`, and `belay incidents show --format markdown`.
public enum Postmortem {
    /// The draft of `incident`.
    public static func markdown(_ incident: IncidentJSON) -> String {
        var lines: [String] = []
        let title =
            incident.drill ? "\(incident.upstream) incident during a failure drill" : "\(incident.upstream) incident"
        lines.append("# Postmortem draft: \(cell(title)) (\(incident.id))")
        lines.append("")
        lines.append(
            "> Drafted by Belay from what it observed; the sections in italics are for the people who were there."
        )
        if incident.drill {
            lines.append(">")
            lines.append(
                "> This incident opened while a failure drill was injecting faults into \(cell(incident.upstream))'s calls: "
                    + "a rehearsal, not the provider failing."
            )
        }
        lines.append("")
        lines.append("## Summary")
        lines.append("")
        lines.append("- **Upstream:** \(cell(incident.upstream))")
        lines.append("- **Status:** \(incident.status)")
        lines.append("- **What Belay saw:** \(cell(incident.cause))")
        lines.append("- **Began:** \(dateTime(incident.openedAt)) (the first failure seen)")
        lines.append("- **Detected:** \(dateTime(incident.detectedAt)), \(span(incident.timeToDetectSeconds)) later")
        if let recovered = incident.recoveredAt, let took = incident.timeToRecoverSeconds {
            lines.append("- **Recovered:** \(dateTime(recovered)), \(span(took)) after it began")
        } else {
            lines.append("- **Recovered:** not yet")
        }
        if let closed = incident.closedAt {
            lines.append("- **Closed:** \(dateTime(closed))")
        }
        lines.append("- **Time to detect:** \(span(incident.timeToDetectSeconds))")
        lines.append("- **Time to recover:** \(incident.timeToRecoverSeconds.map(span) ?? "not recovered yet")")
        lines.append("")
        lines.append("## Impact")
        lines.append("")
        let impact = incident.impact
        lines.append("| What callers saw | Count |")
        lines.append("|---|---:|")
        lines.append("| Calls that failed (5xx, circuit open, timeout) | \(impact.failed) |")
        lines.append("| Calls answered from the stale cache | \(impact.stale) |")
        lines.append("| Calls answered by the fallback | \(impact.fallback) |")
        lines.append("| Writes queued for later delivery | \(impact.queued) |")
        let longest = impact.deliveriesDelayed > 0 ? " (the longest by \(span(impact.longestDelaySeconds)))" : ""
        lines.append("| Deliveries delayed | \(impact.deliveriesDelayed)\(longest) |")
        lines.append("")
        lines.append("## Timeline (UTC)")
        lines.append("")
        lines.append("| Time | Event | What happened |")
        lines.append("|---|---|---|")
        let sameDay = Set(incident.timeline.map { day($0.at) }).count <= 1
        for entry in incident.timeline {
            let at = sameDay ? time(entry.at) : "\(day(entry.at)) \(time(entry.at))"
            lines.append("| \(at) | \(cell(words(entry.event))) | \(cell(entry.detail)) |")
        }
        lines.append("")
        lines.append("## Root cause")
        lines.append("")
        lines.append("_What failed at \(cell(incident.upstream)), and why. Belay only sees the symptoms above._")
        lines.append("")
        lines.append("## What went well")
        lines.append("")
        lines.append("_Did the breaker, retries, stale answers and alerts behave as planned?_")
        lines.append("")
        lines.append("## What went wrong")
        lines.append("")
        lines.append("_What made it longer or wider than it had to be?_")
        lines.append("")
        lines.append("## Action items")
        lines.append("")
        lines.append("| Action | Owner | Due |")
        lines.append("|---|---|---|")
        lines.append("| _…_ | | |")
        lines.append("")
        return lines.joined(separator: "\n")
    }

    /// A table cell's text: one line, `|` escaped, and no HTML a renderer would run.
    package static func cell(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "|": out += "\\|"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\n", "\r", "\t": out += " "
            default:
                if character.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) {
                    out.append(character)
                }
            }
        }
        return out
    }

    /// `breaker.opened` → `breaker opened`, `first_failure` → `first failure`.
    package static func words(_ event: String) -> String {
        event.replacingOccurrences(of: "_", with: " ").replacingOccurrences(of: ".", with: " ")
    }

    package static func dateTime(_ date: Date) -> String { "\(day(date)) \(time(date)) UTC" }

    /// `2026-12-07`.
    package static func day(_ date: Date) -> String { String(ManagementJSON.format(date).prefix(10)) }

    /// `10:02:03.120`.
    package static func time(_ date: Date) -> String {
        let text = ManagementJSON.format(date)
        guard let t = text.firstIndex(of: "T") else { return text }
        return String(text[text.index(after: t)...].prefix(12))
    }

    /// `2.0 s`, `4 min 10 s`, `2 h 5 min`.
    package static func span(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 3_600 { return "\(whole / 60) min \(whole % 60) s" }
        return "\(whole / 3_600) h \(whole % 3_600 / 60) min"
    }
}
