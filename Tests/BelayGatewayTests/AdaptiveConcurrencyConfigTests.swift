import Belay
import BelayGateway
import BelayHTTP
import Testing

/// `upstreams.<name>.bulkhead.adaptive`: what loads, its defaults, and every mistake named by
/// its key path.
@Suite struct AdaptiveConcurrencyConfigTests {
    let loader = ConfigLoader(environment: [:])

    private func load(_ bulkhead: String) throws -> UpstreamConfig {
        let config = try loader.load(
            yaml: "upstreams: { pay: { endpoints: [\"http://a.example\"], bulkhead: \(bulkhead) } }"
        )
        return try #require(config.upstreams.first)
    }

    /// Each issue as `path: message` (without the line).
    private func issues(_ bulkhead: String) -> [String] {
        do {
            _ = try load(bulkhead)
            return []
        } catch let error as ConfigError {
            return error.issues.map { "\($0.path): \($0.message)" }
        } catch {
            return ["\(error)"]
        }
    }

    @Test func theDesignExampleLoadsIntoTheLibrarysConfiguration() async throws {
        let upstream = try load(
            "{ adaptive: { algorithm: aimd, initial: 20, min: 2, max: 200 }, max_queue: 50, max_wait: 1s }"
        )
        let adaptive = try #require(upstream.bulkhead.adaptive)
        #expect(adaptive.algorithm == .aimd)
        #expect((adaptive.initial, adaptive.minimum, adaptive.maximum) == (20, 2, 200))
        let limit = try #require(upstream.policy.adaptiveConcurrency)
        #expect(limit.algorithm == .aimd())
        #expect((limit.initial, limit.minimum, limit.maximum, limit.maxQueue) == (20, 2, 200, 50))
        #expect(limit.maxWait == .seconds(1))
        // The client it builds has the limit instead of a fixed bulkhead.
        let client = try UpstreamClient(policy: upstream.policy)
        #expect(client.concurrencyLimit?.limit == 20)
        #expect(client.concurrencyLimit?.configuration.name == "pay-concurrency")
        try await client.shutdown()
    }

    @Test func defaultsAreTheGradientAndAdaptToTheBoundsTheUserWrote() throws {
        let plain = try #require(try load("{ adaptive: {} }").policy.adaptiveConcurrency)
        #expect(plain.algorithm == .gradient())
        #expect((plain.initial, plain.minimum, plain.maximum, plain.maxQueue) == (20, 2, 200, 50))
        #expect(plain.maxWait == .seconds(1))
        let small = try #require(try load("{ adaptive: { max: 8 }, max_wait: 0s }").policy.adaptiveConcurrency)
        #expect((small.initial, small.minimum, small.maximum) == (8, 2, 8))
        #expect(small.maxWait == .zero)
        let large = try #require(try load("{ adaptive: { min: 300 } }").policy.adaptiveConcurrency)
        #expect((large.initial, large.minimum, large.maximum) == (300, 300, 300))
        // `queue_allowance` sets the gradient's allowance (nil: half the square root of the limit).
        let allowing = try #require(try load("{ adaptive: { queue_allowance: 1.5 } }").policy.adaptiveConcurrency)
        #expect(allowing.algorithm == .gradient(queueAllowance: 1.5))
        // Without `adaptive`, the fixed bulkhead as before.
        #expect(try load("{ max_concurrent: 7 }").policy.adaptiveConcurrency == nil)
    }

    @Test(arguments: [
        (
            "{ adaptive: { min: 10, max: 5 } }",
            ["upstreams.pay.bulkhead.adaptive.min: must not exceed upstreams.pay.bulkhead.adaptive.max (10 > 5)"]
        ),
        (
            "{ adaptive: { initial: 1, min: 2, max: 10 } }",
            [
                "upstreams.pay.bulkhead.adaptive.initial: must be between upstreams.pay.bulkhead.adaptive.min and "
                    + "upstreams.pay.bulkhead.adaptive.max (2...10) (got 1)"
            ]
        ),
        (
            "{ adaptive: { initial: 500 } }",
            [
                "upstreams.pay.bulkhead.adaptive.initial: must be between upstreams.pay.bulkhead.adaptive.min and "
                    + "upstreams.pay.bulkhead.adaptive.max (2...200) (got 500)"
            ]
        ),
        (
            "{ adaptive: { algorithm: vegas } }",
            ["upstreams.pay.bulkhead.adaptive.algorithm: must be one of gradient, aimd (got 'vegas')"]
        ),
        ("{ adaptive: { min: 0 } }", ["upstreams.pay.bulkhead.adaptive.min: must be between 1 and 100000 (got 0)"]),
        ("{ adaptive: { max: -3 } }", ["upstreams.pay.bulkhead.adaptive.max: must be between 1 and 100000 (got -3)"]),
        (
            "{ adaptive: { initial: many } }",
            ["upstreams.pay.bulkhead.adaptive.initial: must be a whole number (got 'many')"]
        ),
        (
            "{ adaptive: { queue_allowance: -1 } }",
            ["upstreams.pay.bulkhead.adaptive.queue_allowance: must be a number from 0 to 100000 (got '-1')"]
        ),
        (
            "{ adaptive: { queue_allowance: lots } }",
            ["upstreams.pay.bulkhead.adaptive.queue_allowance: must be a number from 0 to 100000 (got 'lots')"]
        ),
        (
            "{ adaptive: { queue_allowance: .nan } }",
            ["upstreams.pay.bulkhead.adaptive.queue_allowance: must be a number from 0 to 100000 (got '.nan')"]
        ),
        (
            "{ adaptive: { algorithm: aimd, queue_allowance: 2 } }",
            ["upstreams.pay.bulkhead.adaptive.queue_allowance: applies to algorithm gradient only (got aimd)"]
        ),
        (
            "{ adaptive: { step: 2 } }",
            [
                "upstreams.pay.bulkhead.adaptive.step: unknown key "
                    + "(allowed: algorithm, initial, max, min, queue_allowance)"
            ]
        ),
        (
            "{ max_concurrent: 10, adaptive: { max: 20 } }",
            [
                "upstreams.pay.bulkhead.adaptive: cannot be combined with upstreams.pay.bulkhead.max_concurrent: "
                    + "an adaptive limit replaces the fixed one"
            ]
        ),
        (
            "{ max_wait: 1s }",
            [
                "upstreams.pay.bulkhead.max_wait: applies to an adaptive limit only: add "
                    + "upstreams.pay.bulkhead.adaptive, or remove max_wait"
            ]
        ),
        (
            "{ adaptive: {}, max_wait: soon }",
            [
                "upstreams.pay.bulkhead.max_wait: must be a duration such as 250ms, 5s, 20m, 4h or 1d (got 'soon')"
            ]
        ),
        ("{ adaptive: gradient }", ["upstreams.pay.bulkhead.adaptive: must be a mapping of keys to values"]),
    ])
    func eachMistakeIsNamedByItsKeyPath(bulkhead: String, expected: [String]) {
        #expect(issues(bulkhead) == expected)
    }
}
