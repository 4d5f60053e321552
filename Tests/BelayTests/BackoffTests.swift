import Belay
import Testing

@Suite struct BackoffTests {
    @Test func exponentialWithoutJitterDoublesUpToTheCap() {
        let backoff = Backoff.exponential(base: .milliseconds(100), cap: .seconds(1))
        let delays = (1...6).map { backoff.delay(forRetry: $0, previous: nil, random: 0.3) }
        #expect(
            delays == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1),
                .seconds(1),
            ]
        )
    }

    @Test func fullJitterScalesTheCeilingByTheRandomNumber() {
        let backoff = Backoff.exponentialJitter(base: .milliseconds(100), cap: .seconds(5))
        #expect(backoff.delay(forRetry: 3, previous: nil, random: 0.5) == .milliseconds(200))
        #expect(backoff.delay(forRetry: 3, previous: nil, random: 0) == .zero)
        #expect(backoff.delay(forRetry: 1, previous: nil, random: 1) == .milliseconds(100))
    }

    @Test(arguments: [UInt64(1), 7, 42, 1_234_567, 99_999_999])
    func fullJitterStaysWithinItsBoundsForEverySeed(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let base = Duration.milliseconds(50)
        let cap = Duration.seconds(2)
        let backoff = Backoff.exponentialJitter(base: base, cap: cap)
        for _ in 0..<2_000 {
            let retry = Int.random(in: 1...80, using: &generator)
            let unit = Double.random(in: 0..<1, using: &generator)
            let delay = backoff.delay(forRetry: retry, previous: nil, random: unit)
            let ceiling = min(cap, base * (1 << min(retry - 1, 40)))
            #expect(delay >= .zero)
            #expect(delay <= ceiling)
        }
    }

    @Test(arguments: [UInt64(3), 11, 2024])
    func decorrelatedJitterStaysBetweenBaseAndCap(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let backoff = Backoff.decorrelatedJitter(base: .milliseconds(100), cap: .seconds(10))
        var previous: Duration?
        for retry in 1...500 {
            let delay = backoff.delay(
                forRetry: retry,
                previous: previous,
                random: Double.random(in: 0..<1, using: &generator)
            )
            #expect(delay >= .milliseconds(100))
            #expect(delay <= .seconds(10))
            #expect(delay <= max(.milliseconds(100), (previous ?? .milliseconds(100)) * 3))
            previous = delay
        }
    }

    @Test func linearAndConstant() {
        let linear = Backoff.linear(base: .milliseconds(100), cap: .milliseconds(250))
        #expect(
            (1...4).map { linear.delay(forRetry: $0, previous: nil, random: 0.9) } == [
                .milliseconds(100), .milliseconds(200), .milliseconds(250), .milliseconds(250),
            ]
        )
        #expect(Backoff.constant(.seconds(2)).delay(forRetry: 9, previous: nil, random: 0.1) == .seconds(2))
    }

    @Test func hugeRetryNumbersDoNotOverflow() {
        let backoff = Backoff.exponentialJitter(base: .seconds(1), cap: .seconds(30))
        #expect(backoff.delay(forRetry: Int.max, previous: nil, random: 1) == .seconds(30))
    }
}
