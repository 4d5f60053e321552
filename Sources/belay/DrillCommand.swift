import ArgumentParser
import BelayClient
import BelayGateway
import Foundation

struct Drill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a failure drill against one upstream of a running gateway, and report what happened.",
        discussion: """
            Injects a failure into the upstream's calls for a bounded time through the \
            management API (POST /v1/upstreams/<name>/faults, scope admin), watches the \
            upstream and the alerts every second while it runs and until the upstream has \
            recovered, then prints a report: what callers saw (from the audit trail), whether \
            and when the breaker opened, the alerts raised and the time to detect, and the time \
            to recover. The upstream itself is never called badly: the fault is injected in \
            Belay, at each attempt, so retries, the breaker, failover and stale answers react as \
            they would to the real thing. The drill shows on the status page as a drill.

            Ctrl-C ends the drill early (DELETE …/faults) and prints the report so far. A drill \
            lasts at most an hour and ends by itself on the gateway even if this command dies.

            Send traffic through /proxy/<upstream>/… meanwhile (your application, or a load \
            tool) to see how callers are served.

            Examples:
              belay drill payments --outage 60s
              belay drill payments --errors 20% --latency 500ms --duration 5m
              belay drill payments --errors 10% --status 429
              belay drill shipping --resets 5% --duration 2m
              belay drill pricing --latency 2s --duration 30s
            """
    )

    @OptionGroup var connection: Deliveries.Connection
    @Argument(help: "The upstream to drill.") var upstream: String
    @Option(help: "A full outage for this long (every attempt fails to connect), e.g. 60s.") var outage: String?
    @Option(help: "Answer this share of attempts with an error status, e.g. 20%.") var errors: String?
    @Option(help: "The status --errors answers with, 400–599 (default 503).") var status: Int?
    @Option(help: "Reset the connection on this share of attempts, e.g. 5%.") var resets: String?
    @Option(help: "Add this wait to every attempt, e.g. 500ms (alone, or with --errors or --resets).")
    var latency: String?
    @Option(help: "How long the drill lasts, at most 1h (default 60s; --outage takes its own).") var duration: String?
    @Option(help: "How long to wait for the upstream to recover after the drill ends.") var recovery: String = "2m"

    func validate() throws {
        if case .failure(let failure) = body { throw ValidationError(failure.description) }
        guard ConfigDuration.parse(recovery) != nil else {
            throw ValidationError("--recovery must be a duration such as 2m (got '\(recovery)')")
        }
    }

    private var body: Result<Data, DrillRun<ContinuousClock>.Failure> {
        DrillRun<ContinuousClock>.request(
            outage: outage,
            errors: errors,
            resets: resets,
            latency: latency,
            status: status,
            duration: duration
        )
    }

    func run() async throws {
        let run = DrillRun(
            upstream: upstream,
            request: try body.get(),
            recovery: ConfigDuration.parse(recovery) ?? .seconds(120),
            client: connection.client,
            clock: ContinuousClock(),
            progress: { print($0) }
        )
        let task = Task { try await run.run() }
        // Ctrl-C cancels the watch, which ends the drill early and still prints the report.
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT)
        signal(SIGINT, SIG_IGN)
        interrupt.setEventHandler { task.cancel() }
        interrupt.resume()
        defer { interrupt.cancel() }
        do {
            let report = try await task.value
            print("")
            print(report.render())
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}
