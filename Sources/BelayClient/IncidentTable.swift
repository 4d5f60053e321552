public import BelayAPI
import Foundation

/// Renders incidents (`GET /v1/incidents[/{id}]`, decoded as ``IncidentJSON``) as plain text
/// for `belay incidents`.
public enum IncidentTable {
    /// A page as a table, one row each, newest first.
    public static func list(_ page: IncidentListJSON) -> String {
        guard !page.incidents.isEmpty else { return "no incidents" }
        var rows = [["ID", "UPSTREAM", "STATUS", "BEGAN", "DETECT", "RECOVER", "FAILED", "STALE", "CAUSE"]]
        for incident in page.incidents {
            rows.append([
                incident.id,
                incident.upstream + (incident.drill ? " (drill)" : ""),
                incident.status,
                Postmortem.dateTime(incident.openedAt),
                Postmortem.span(incident.timeToDetectSeconds),
                incident.timeToRecoverSeconds.map(Postmortem.span) ?? "-",
                String(incident.impact.failed),
                String(incident.impact.stale),
                TextTable.clip(oneLine(incident.cause), 60),
            ])
        }
        var output = TextTable.render(rows)
        if let cursor = page.nextCursor { output += "\nmore: --cursor \(cursor)" }
        return output
    }

    /// One incident: its summary, impact and timeline.
    public static func show(_ incident: IncidentJSON) -> String {
        var lines = [
            "incident \(incident.id): \(incident.upstream), \(incident.status)\(incident.drill ? " (during a drill)" : "")",
            "  cause:           \(oneLine(incident.cause))",
            "  began:           \(Postmortem.dateTime(incident.openedAt))",
            "  detected:        \(Postmortem.dateTime(incident.detectedAt)) "
                + "(time to detect \(Postmortem.span(incident.timeToDetectSeconds)))",
        ]
        if let recovered = incident.recoveredAt, let took = incident.timeToRecoverSeconds {
            lines.append(
                "  recovered:       \(Postmortem.dateTime(recovered)) (time to recover \(Postmortem.span(took)))"
            )
        } else {
            lines.append("  recovered:       not yet")
        }
        if let closed = incident.closedAt { lines.append("  closed:          \(Postmortem.dateTime(closed))") }
        let impact = incident.impact
        lines.append(
            "  impact:          \(impact.failed) failed, \(impact.stale) stale, \(impact.fallback) fallback, "
                + "\(impact.queued) queued, \(impact.deliveriesDelayed) deliveries delayed"
                + (impact.deliveriesDelayed > 0 ? " (longest \(Postmortem.span(impact.longestDelaySeconds)))" : "")
        )
        lines.append("")
        var rows = [["TIME (UTC)", "EVENT", "WHAT HAPPENED"]]
        for entry in incident.timeline {
            rows.append([Postmortem.time(entry.at), entry.event, oneLine(entry.detail)])
        }
        lines.append(TextTable.render(rows))
        lines.append("")
        lines.append("a postmortem draft: belay incidents show \(incident.id) --format markdown")
        return lines.joined(separator: "\n")
    }

    /// Text as one printable line: a hostile upstream's words cannot move the terminal.
    static func oneLine(_ text: String) -> String {
        String(
            text.unicodeScalars.map { scalar -> Character in
                scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
                    ? " " : Character(scalar)
            }
        )
    }
}
