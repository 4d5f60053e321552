import ArgumentParser
import BelayGateway

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
        subcommands: [Demo.self]
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
