import Foundation
import Testing

/// `--help` is written for a terminal: paragraphs that swift-argument-parser wraps to the
/// terminal's width, never a hard line break inside a sentence.
@Suite(
    .timeLimit(.minutes(1)),
    .enabled(if: belayIsBuilt, "the belay executable is built beside the tests by swift build / swift test")
)
struct HelpTextTests {
    static let commands: [[String]] = [
        [], ["serve"], ["check-config"], ["demo"], ["deliveries"], ["deliveries", "list"], ["upstreams"],
        ["incidents"], ["incidents", "show"], ["webhooks"], ["webhooks", "list"], ["requests"],
        ["requests", "list"], ["drill"], ["reload"], ["storage"], ["storage", "backup"], ["storage", "check"],
        ["storage", "copy"],
    ]

    @Test(arguments: commands)
    func theHelpFitsEightyColumns(command: [String]) async throws {
        let run = try await runBelay(command + ["--help"], environment: ["COLUMNS": "80"])
        #expect(run.status == 0, "\(run.all)")
        // The overview: USAGE and OPTIONS lines are laid out by swift-argument-parser itself.
        let overview = run.standardOutput.components(separatedBy: "\nUSAGE:")[0]
        for line in overview.split(separator: "\n") {
            #expect(line.count <= 80, "\(command): \(line.count) columns: \(line)")
        }
    }

    /// Wide enough that nothing is wrapped: each prose paragraph of the overview is then one
    /// line. Two prose lines in a row mean a line break written into a sentence, which wraps
    /// mid-sentence on any other width.
    @Test(arguments: commands)
    func theOverviewHasNoHardLineBreakInASentence(command: [String]) async throws {
        let run = try await runBelay(command + ["--help"], environment: ["COLUMNS": "1000"])
        #expect(run.status == 0, "\(run.all)")
        let overview = run.standardOutput.components(separatedBy: "\nUSAGE:")[0]
        let lines = overview.components(separatedBy: "\n")
        for (line, next) in zip(lines, lines.dropFirst()) {
            let prose = { (text: String) in !text.isEmpty && !text.hasPrefix(" ") }
            guard prose(line), prose(next) else { continue }
            // "Examples:" and other headings introduce indented lines, never prose.
            Issue.record("\(command): a line break inside a paragraph after: \(line)")
        }
        #expect(overview.contains("OVERVIEW:"))
    }

    @Test func theStorageHelpTeachesWithExamples() async throws {
        let storage = try await runBelay(["storage", "--help"], environment: ["COLUMNS": "80"])
        for phrase in ["belay storage backup --config", "belay storage check --storage", "SUBCOMMANDS:"] {
            #expect(storage.standardOutput.contains(phrase), "\(phrase)")
        }
        let backup = try await runBelay(["storage", "backup", "--help"], environment: ["COLUMNS": "80"])
        for phrase in ["online backup API", "--force", "pg_dump", "To restore", "Exit codes: 0"] {
            #expect(backup.standardOutput.contains(phrase), "\(phrase)")
        }
    }
}
