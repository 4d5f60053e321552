import ArgumentParser
import BelayGateway
import Foundation
import Hummingbird
import Logging

@main
struct BelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "belay",
        abstract: "Make the third-party HTTP APIs your application depends on safe to depend on.",
        discussion: """
            Belay applies timeouts, retries with jitter under a retry budget, circuit breakers,
            bulkheads, rate limits, hedging and fallbacks to the calls an application makes.

            Start with `belay demo` to watch every strategy decide, live.
            """,
        version: BelayGateway.version,
        subcommands: [Serve.self, CheckConfig.self, Demo.self]
    )
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the resilience strategies against simulated flaky operations and print each decision.",
        discussion: """
            Offline and self-contained: a payment API failing 2 calls in 3 (retry with full
            jitter), a shipping API that goes down and recovers (circuit breaker), a stalling
            quote API (hedging and timeouts), a crowded CRM (bulkhead) and a rate-limited SMS
            provider. Finishes in about two seconds.
            """
    )

    @Option(help: "Multiply every simulated duration by this factor (0.1 runs ten times faster).")
    var pace: Double = 1

    func validate() throws {
        guard pace > 0, pace <= 10 else {
            throw ValidationError("--pace must be greater than 0 and at most 10 (got \(pace)).")
        }
    }

    func run() async throws {
        try await LibraryDemo(pace: pace) { line in print(line) }.run()
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a config file and report every problem with its key path and line.",
        discussion: """
            `${NAME}` in values is replaced from the environment; a variable that is not set is
            a problem too. Exits 0 when the config is valid, 2 when it is not.

            Example:
              belay check-config --config belay.yaml
            """
    )

    @Option(name: .shortAndLong, help: "The config file to check.")
    var config: String = "belay.yaml"

    func run() throws {
        do {
            let loaded = try ConfigLoader(environment: ProcessInfo.processInfo.environment).load(contentsOf: config)
            let upstreams = loaded.upstreams.map(\.name).joined(separator: ", ")
            print(
                "\(config): OK — listening on \(loaded.server.listen), storage \(loaded.storage), "
                    + "\(loaded.upstreams.count) upstream(s)\(upstreams.isEmpty ? "" : ": \(upstreams)")"
            )
        } catch {
            printError("\(config): \(error.issues.count) problem(s)")
            for issue in error.issues {
                let location = issue.line.map { "\(config):\($0): " } ?? "\(config): "
                printError("  \(location)\(issue.path.isEmpty ? "(root)" : issue.path): \(issue.message)")
            }
            throw ExitCode(2)
        }
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway: the resilient proxy at /proxy/{upstream}/…, health and management routes.",
        discussion: """
            Point an application's base URL at http://127.0.0.1:8080/proxy/<upstream> instead of the
            provider: Belay applies that upstream's timeouts, retries, circuit breaker, bulkhead and
            rate limit from the config. SIGTERM or SIGINT drains in-flight requests, then stops.

            Exit codes: 0 clean stop, 2 invalid config or arguments, 1 anything else.

            Example:
              belay serve --config belay.yaml
            """
    )

    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case json, text
    }

    @Option(name: .shortAndLong, help: "The config file.")
    var config: String = "belay.yaml"

    @Option(help: "Log format: json (default when stdout is not a terminal) or text.")
    var logFormat: LogFormat?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical.")
        }
    }

    func run() async throws {
        let format = logFormat ?? (isatty(STDOUT_FILENO) != 0 ? .text : .json)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler =
                format == .json ? JSONLogHandler(label: label) : StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "belay")
        let loaded: GatewayConfig
        do {
            loaded = try ConfigLoader(environment: ProcessInfo.processInfo.environment).load(contentsOf: config)
        } catch {
            printError("\(config): invalid config, not starting (\(error.issues.count) problem(s))")
            for issue in error.issues {
                printError("  \(config)\(issue.line.map { ":\($0)" } ?? ""): \(issue.path): \(issue.message)")
            }
            throw ExitCode(2)
        }
        let app = try buildApplication(config: loaded, logger: logger) { port in
            logger.info(
                "belay is serving",
                metadata: [
                    "belay.listen": "\(loaded.server.listen.host):\(port)",
                    "belay.upstreams": .string(loaded.upstreams.map(\.name).joined(separator: ",")),
                ]
            )
        }
        try await app.runService()
    }
}
