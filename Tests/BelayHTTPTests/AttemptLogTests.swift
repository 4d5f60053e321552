import Testing

@testable import BelayHTTP

/// What a call's attempt log keeps of an attempt cancelled before it got an answer.
@Suite struct AttemptLogTests {
    let endpoint = UpstreamEndpoint(scheme: "http", host: "a.example", port: 80)

    func record(_ number: Int, status: Int? = nil) -> AttemptRecord {
        AttemptRecord(number: number, endpoint: endpoint, status: status, failure: nil, duration: .milliseconds(5))
    }

    @Test func aHedgedAttemptAnotherOneBeatIsRecordedAsAbandoned() {
        let log = AttemptLog(numbersAttemptsByStart: true)
        log.append(record(2, status: 200))
        log.cancelled(record(1))
        #expect(log.records.map(\.number) == [1, 2])
        #expect(log.records.map(\.abandoned) == [true, false])
    }

    @Test func hedgedAttemptsCancelledBecauseTheCallerWentAwayAreNotRecordedAsBeaten() {
        // Nobody answered: the call itself was cancelled (its caller disconnected), as an
        // unhedged call's attempt, the attempts are not recorded as beaten by another.
        let log = AttemptLog(numbersAttemptsByStart: true)
        log.cancelled(record(1))
        log.cancelled(record(2))
        #expect(log.records.isEmpty)
    }

    @Test func anUnhedgedCallsCancelledAttemptIsNotRecorded() {
        let log = AttemptLog()
        log.append(record(1, status: 503))
        log.cancelled(record(2))
        #expect(log.records.map(\.number) == [1])
    }
}
