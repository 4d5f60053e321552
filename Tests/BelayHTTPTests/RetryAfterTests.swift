import Belay
import BelayHTTP
import Testing

@Suite struct RetryAfterTests {
    @Test func deltaSeconds() {
        #expect(RetryAfter.parse("120", now: 0) == .seconds(120))
        #expect(RetryAfter.parse(" 0 ", now: 0) == .zero)
    }

    @Test func httpDateIsTurnedIntoADelay() {
        // 1994-11-06T08:49:37Z is Unix 784111777.
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: 784_111_700) == .seconds(77))
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: 784_111_800) == .zero)
    }

    @Test(arguments: ["", "-5", "soon", "Sun, 06 Nov 1994 08:49:37 PST", "Sun, 32 Nov 1994 08:49:37 GMT", "1.5"])
    func malformedValuesAreIgnored(value: String) {
        #expect(RetryAfter.parse(value, now: 0) == nil)
    }

    @Test func everyRejectionMapsToAContractCode() {
        #expect(ProblemCode(.circuitOpen) == .circuitOpen)
        #expect(ProblemCode(.circuitIsolated).status == 503)
        #expect(ProblemCode(.timeout).status == 504)
        #expect(ProblemCode(.rateLimited).status == 429)
        #expect(ProblemCode(.retryBudgetExhausted).name == "retry-budget-exhausted")
        #expect(Set(ProblemCode.all.map(\.name)).count == ProblemCode.all.count)
    }
}
