import BelayAPI
import Foundation

/// Plain-text tables of the management API's JSON, as the CLI prints them.
enum TextTable {
    /// Left-aligned columns separated by two spaces.
    static func render(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// A date-time as the API writes it; empty for none.
    static func date(_ date: Date?) -> String {
        date.map(ManagementJSON.format) ?? ""
    }

    /// `label  value` lines, labels padded to one width; empty values left out.
    static func fields(_ fields: [(String, String)]) -> [String] {
        fields.filter { !$0.1.isEmpty }.map { label, value in
            label.padding(toLength: 16, withPad: " ", startingAt: 0) + value
        }
    }

    /// `text` cut to `width` characters, with `…` when cut.
    static func clip(_ text: String, _ width: Int) -> String {
        text.count <= width ? text : String(text.prefix(width - 1)) + "…"
    }
}
