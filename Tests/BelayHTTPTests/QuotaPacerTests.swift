import BelayTestKit
import HTTPTypes
import Testing

@testable import BelayHTTP

@Suite struct QuotaPacerTests {
    private func headers(limit: Int, remaining: Int, reset: Int) -> RateLimitHeaders {
        var fields = HTTPFields()
        fields[HTTPField.Name("RateLimit-Policy")!] = "\"default\";q=\(limit);w=60"
        fields[HTTPField.Name("RateLimit")!] = "\"default\";r=\(remaining);t=\(reset)"
        return RateLimitHeaders(fields)
    }

    @Test func doesNothingWhileMoreThanATenthOfTheQuotaIsLeft() {
        let clock = ManualClock()
        let pacer = QuotaPacer(name: "q", clock: clock)
        pacer.observe(headers(limit: 100, remaining: 11, reset: 30))
        #expect(!pacer.isPacing)
        #expect(pacer.decide(maxWait: .seconds(1)) == .go)
    }

    @Test func spreadsTheLastTenthEvenlyOverTheTimeToReset() {
        let clock = ManualClock()
        let pacer = QuotaPacer(name: "q", clock: clock)
        // 10 of 100 left, reset in 22 s: one call every 22 / (10 + 1) = 2 s.
        pacer.observe(headers(limit: 100, remaining: 10, reset: 22))
        #expect(pacer.isPacing)
        #expect(pacer.decide(maxWait: .seconds(5)) == .go)
        #expect(pacer.decide(maxWait: .seconds(5)) == .wait(.seconds(2)))
        #expect(pacer.decide(maxWait: .seconds(5)) == .wait(.seconds(4)))
        // The next slot is 6 s away: more than the call may wait, so it is refused.
        #expect(pacer.decide(maxWait: .seconds(5)) == .refuse(retryAfter: .seconds(6)))
        clock.advance(by: .seconds(5))
        #expect(pacer.decide(maxWait: .seconds(5)) == .wait(.seconds(1)))
    }

    @Test func withNothingLeftCallsWaitForTheResetAndPacingEndsThen() {
        let clock = ManualClock()
        let pacer = QuotaPacer(name: "q", clock: clock)
        pacer.observe(headers(limit: 100, remaining: 0, reset: 30))
        #expect(pacer.decide(maxWait: .seconds(2)) == .refuse(retryAfter: .seconds(30)))
        clock.advance(by: .seconds(29))
        #expect(pacer.decide(maxWait: .seconds(2)) == .wait(.seconds(1)))
        clock.advance(by: .seconds(1))
        #expect(!pacer.isPacing)
        #expect(pacer.decide(maxWait: .zero) == .go)
    }

    @Test func statesTheProvidersPolicyOrElseItsOwnPace() {
        let clock = ManualClock()
        let pacer = QuotaPacer(name: "q", clock: clock)
        pacer.observe(headers(limit: 100, remaining: 10, reset: 22))
        #expect(pacer.statedPolicy == (100, 60))
        var legacy = HTTPFields()
        legacy[HTTPField.Name("X-RateLimit-Remaining")!] = "3"
        legacy[HTTPField.Name("X-RateLimit-Reset")!] = "8"
        pacer.observe(RateLimitHeaders(legacy))
        #expect(pacer.statedPolicy == (1, 2))  // one call every 8 / (3 + 1) s
    }

    @Test func tokenBucketsAreStatedAsAQuotaPerRefillWindow() {
        #expect(RateLimitHeaders.policy(permitsPerSecond: 200, burst: 400) == (400, 2))
        #expect(RateLimitHeaders.policy(permitsPerSecond: 50, burst: 50) == (50, 1))
        #expect(RateLimitHeaders.policy(permitsPerSecond: 10, burst: 1) == (10, 1))
        #expect(RateLimitHeaders.policy(permitsPerSecond: 0.5, burst: 1) == (1, 2))
        #expect(RateLimitHeaders.policy(permitsPerSecond: 1.5, burst: 2) == (3, 2))
        #expect(RateLimitHeaders.policy(permitsPerSecond: 1e-300, burst: 1) == (1, 1_000_000_000_000_000))
        let fields = RateLimitHeaders.fields(policy: "p", quota: 3, window: 2, remaining: 0, reset: .milliseconds(1))
        #expect(fields[HTTPField.Name("RateLimit-Policy")!] == #""p";q=3;w=2"#)
        #expect(fields[HTTPField.Name("RateLimit")!] == #""p";r=0;t=1"#)
    }

    @Test(arguments: [
        #""d";r=-1;t=5"#, #""d";r=0;t=-5"#, #""d";r=0;t=9223372036854775807"#, #""d";r=9223372036854775807;t=5"#,
        #""d";r=0;t=99999999999999999999"#,
    ])
    func nonsenseFromAProviderIsIgnoredNotTrappedOn(rateLimit: String) {
        var fields = HTTPFields()
        fields[HTTPField.Name("RateLimit")!] = rateLimit
        let clock = ManualClock()
        let pacer = QuotaPacer(name: "q", clock: clock)
        pacer.observe(RateLimitHeaders(fields))
        #expect(!pacer.isPacing)
        #expect(pacer.decide(maxWait: .zero) == .go)
    }

    @Test func legacyHeadersWithNegativeOrHugeValuesAreIgnored() {
        var fields = HTTPFields()
        fields[HTTPField.Name("X-RateLimit-Limit")!] = "-10"
        fields[HTTPField.Name("X-RateLimit-Remaining")!] = "-1"
        fields[HTTPField.Name("X-RateLimit-Reset")!] = "1700000000"
        #expect(RateLimitHeaders(fields) == RateLimitHeaders(HTTPFields()))
    }

    @Test func aHealthyQuotaEndsPacingAtOnce() {
        let clock = ManualClock()
        let pacer = QuotaPacer(name: "q", clock: clock)
        pacer.observe(headers(limit: 100, remaining: 1, reset: 60))
        #expect(pacer.isPacing)
        pacer.observe(headers(limit: 100, remaining: 100, reset: 60))
        #expect(!pacer.isPacing)
    }
}
