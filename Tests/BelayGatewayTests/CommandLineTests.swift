import Foundation
import Testing

/// The built `belay` executable, beside the test binary in the products directory.
private let belayExecutable: URL? = {
    #if os(macOS)
    let products: URL? = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }?.bundleURL
        .deletingLastPathComponent()
    #else
    let products: URL? = Bundle.main.bundleURL
    #endif
    guard let url = products?.appendingPathComponent("belay"), FileManager.default.isExecutableFile(atPath: url.path)
    else { return nil }
    return url
}()

@Suite(
    .timeLimit(.minutes(1)),
    .enabled(if: belayExecutable != nil, "the belay executable is built beside the tests by swift build / swift test")
)
struct CommandLineTests {
    struct Run {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    private func belay(_ arguments: [String]) async throws -> Run {
        let process = Process()
        process.executableURL = belayExecutable
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        let status = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<Int32, any Error>) in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        return Run(
            status: status,
            standardOutput: String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            standardError: String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        )
    }

    @Test(arguments: [
        (["--bogus"], "Unknown option '--bogus'"),
        (["serve", "--log-level", "loud"], "--log-level must be one of"),
        (["serve", "--log-format", "xml"], "--log-format"),
        (["demo", "--pace", "0"], "--pace must be greater than 0"),
        (["demo", "--requests"], "Missing value for '--requests"),
        (["launch"], "Unexpected argument 'launch'"),
    ])
    func invalidArgumentsExit2WithTheirMessage(arguments: [String], message: String) async throws {
        let run = try await belay(arguments)
        #expect(run.status == 2, "\(arguments): \(run.standardError)")
        #expect(run.standardError.contains(message), "\(run.standardError)")
        #expect(run.standardError.contains("Usage:"))
    }

    @Test func helpAndVersionExit0() async throws {
        let help = try await belay(["--help"])
        #expect(help.status == 0)
        #expect(help.standardOutput.contains("USAGE: belay"))
        let serveHelp = try await belay(["serve", "--help"])
        #expect(serveHelp.status == 0)
        #expect(serveHelp.standardOutput.contains("2 invalid config or arguments"))
        let version = try await belay(["--version"])
        #expect(version.status == 0)
        #expect(version.standardOutput == "0.1.0\n")
    }

    @Test func anUnreadableConfigExits2() async throws {
        let run = try await belay(["check-config", "--config", "/nonexistent/belay.yaml"])
        #expect(run.status == 2)
        #expect(run.standardError.contains("cannot read /nonexistent/belay.yaml"))
    }
}
