import ArgumentParser
import BelayDemo
import BelayGateway
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

@main
struct BelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "belay",
        abstract: "Make the third-party HTTP APIs your application depends on safe to depend on.",
        discussion: """
            Belay applies timeouts, retries with jitter under a retry budget, circuit breakers, \
            bulkheads, rate limits and failover to the calls an application makes to third-party \
            APIs, queues writes for durable delivery, and takes in webhooks without losing any.

            Start with belay demo to watch it work offline, write a belay.yaml, check it with \
            belay check-config, then run belay serve. The commands deliveries, upstreams, drill, \
            reload and storage operate a running gateway; each one's --help says how.

            Examples:
              belay demo
              belay check-config --config belay.yaml
              belay serve --config belay.yaml
              belay upstreams list
              belay drill payments --outage 60s
              belay incidents list
              belay reload
              belay storage backup --config belay.yaml /var/backups/belay/belay.db
            """,
        version: BelayGateway.version,
        subcommands: [
            Serve.self, CheckConfig.self, Demo.self, Deliveries.self, Webhooks.self, Requests.self, Upstreams.self,
            Incidents.self, Drill.self, Reload.self, Storage.self,
        ]
    )

    /// Runs the command line as swift-argument-parser does, except that invalid arguments exit
    /// 2 (with the same message and usage), not 64: DESIGN.md's exit codes are 0 clean stop,
    /// 2 invalid config or arguments, 1 anything else. `--help` and `--version` still exit 0.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot(nil)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            printError(fullMessage(for: error))
            Foundation.exit(2)
        }
    }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch Belay work: the gateway in front of simulated flaky upstreams, offline.",
        discussion: """
            Starts the gateway on 127.0.0.1 with four simulated upstreams: a healthy one, a flaky \
            one where 1 call in 3 fails, one whose primary endpoint is down and whose backup is \
            healthy, and one that fails halfway and is then served from its cache. It sends \
            traffic through /proxy/<upstream>/… and prints what Belay did: retries, failovers, \
            breaker transitions, stale answers served. It needs no network and no config, and \
            finishes in a few seconds.

            With --library it tours the resilience library's strategies one by one instead \
            (retry, circuit breaker, hedging, bulkhead, rate limiter).

            With --drill it runs a failure drill from start to postmortem instead, in about \
            15 seconds: an application calls the healthy catalog upstream through the gateway \
            while `belay drill catalog --outage 5s` runs; Belay opens an incident, notes the \
            recovery, closes it, and the demo prints the drill's report and the incident's \
            postmortem draft (as `belay incidents show ID --format markdown` does).

            Examples:
              belay demo
              belay demo --requests 200
              belay demo --library --pace 0.1
              belay demo --drill
            """
    )

    @Flag(help: "Tour the library's strategies (retry, breaker, hedging, bulkhead, rate limiter) instead.")
    var library = false

    @Flag(help: "Run a failure drill on a simulated upstream instead, and print the incident's postmortem draft.")
    var drill = false

    @Option(help: "Requests sent to each simulated upstream.")
    var requests: Int = 40

    @Option(help: "With --library: multiply every simulated duration by this factor (0.1 runs ten times faster).")
    var pace: Double = 1

    func validate() throws {
        guard !(library && drill) else {
            throw ValidationError("--library and --drill are two different demos: choose one.")
        }
        guard pace > 0, pace <= 10 else {
            throw ValidationError("--pace must be greater than 0 and at most 10 (got \(pace)).")
        }
        guard (1...10_000).contains(requests) else {
            throw ValidationError("--requests must be between 1 and 10000 (got \(requests)).")
        }
    }

    func run() async throws {
        if drill {
            try await DrillDemo { line in print(line) }.run()
        } else if library {
            try await LibraryDemo(pace: pace) { line in print(line) }.run()
        } else {
            try await GatewayDemo(requestsPerUpstream: requests) { line in print(line) }.run()
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a config file and report every problem with its key path and line.",
        discussion: """
            Reads the file as belay serve would and reports every problem at once, each with its \
            key path (upstreams.payments.retry.max_attempts) and line, so that one run finds \
            them all. ${NAME} in a value is replaced from the environment, and a variable that \
            is not set is a problem too: run it with the environment the gateway will have.

            Exit codes: 0 the config is valid, 2 it is not.

            Examples:
              belay check-config
              belay check-config --config /etc/belay/belay.yaml
              PAYMENTS_TOKEN=test belay check-config --config examples/belay.yaml
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
                    + (loaded.server.tls == nil ? "" : ", TLS on")
            )
            for warning in loaded.warnings {
                printError("  WARNING \(config): \(warning.path): \(warning.message)")
            }
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
            Point an application's base URL at http://127.0.0.1:8080/proxy/<upstream> instead of \
            the provider's: Belay applies that upstream's timeouts, retries, circuit breaker, \
            bulkhead and rate limit from the config. POST /v1/deliveries queues a write for \
            durable delivery, POST /webhooks/<source> takes in a provider's webhooks, and the \
            status page is at /.

            The config is checked first, as belay check-config does; an invalid one is refused \
            with every problem and exit code 2. Logs go to standard output: readable text on a \
            terminal, JSON lines otherwise (for journald or a log shipper), or what --log-format \
            says.

            SIGTERM or SIGINT stops it gracefully: /readyz answers 503 at once while new \
            connections are still served for server.drain (5s by default), so that a load \
            balancer stops sending; then the listener closes, requests in flight finish, and it \
            exits 0.

            SIGHUP (or belay reload) re-reads the config file: a valid one takes effect for new \
            requests (upstream policies, consumers and keys, the TLS certificate) while requests \
            in flight finish under the old one; an invalid one is refused with every problem \
            logged, and the running config is kept. What needs a restart (server.listen, \
            storage, …) is logged by its key path.

            Exit codes: 0 clean stop, 2 invalid config or arguments, 1 anything else.

            Examples:
              belay serve
              belay serve --config /etc/belay/belay.yaml --log-format json
              belay serve --log-level debug
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
        // Traces go to an OTLP collector when the config or OTEL_EXPORTER_OTLP_ENDPOINT names one.
        let export: TraceExport?
        do {
            export = try TraceExport.make(
                loaded.telemetry,
                environment: ProcessInfo.processInfo.environment,
                // The exporter's own logs could name its headers' values (secrets).
                logger: Redactor(config: loaded).redacting(logger)
            )
        } catch {
            printError("\(config): cannot export traces, not starting: \(error)")
            throw ExitCode(2)
        }
        // SIGHUP (or POST /v1/admin/reload) re-reads this file, with the environment it had at start.
        let path = config
        let environment = ProcessInfo.processInfo.environment
        let reread: ConfigSource = { () throws(ConfigError) in
            try ConfigLoader(environment: environment).load(contentsOf: path)
        }
        let serving: @Sendable (Int) async -> Void = { port in
            logger.info(
                "belay is serving",
                metadata: [
                    "belay.listen": "\(loaded.server.listen.host):\(port)",
                    "belay.scheme": loaded.server.tls == nil ? "http" : "https",
                    "belay.upstreams": .string(loaded.upstreams.map(\.name).joined(separator: ",")),
                ]
            )
        }
        let app = try await buildApplication(
            config: loaded,
            logger: logger,
            tracer: export?.tracer,
            reload: ReloadOptions(source: reread, signals: [.sighup]),
            onServerRunning: serving
        )
        // SIGTERM or SIGINT: /readyz answers 503 for server.drain, then the listener closes,
        // requests in flight finish and the services stop. The exporter, if any, starts first
        // and stops last, after the server has drained: the last requests' spans are sent too.
        let services = ServiceGroup(
            configuration: .init(
                services: (export.map { [.init(service: $0.service)] } ?? []) + [.init(service: app)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await services.run()
    }
}
