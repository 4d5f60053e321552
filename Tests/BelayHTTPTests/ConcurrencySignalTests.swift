import Belay
import HTTPTypes
import NIOCore
import Testing

@testable import BelayHTTP

/// What an attempt's outcome tells an upstream's adaptive concurrency limit, by "Hardening"'s
/// whose-fault rules: only the provider's overload is a drop.
@Suite struct ConcurrencySignalTests {
    let endpoint = UpstreamEndpoint(scheme: "http", host: "127.0.0.1", port: 8080)

    func answer(_ status: Int) -> Result<UpstreamResponse, any Error> {
        .success(
            UpstreamResponse(
                status: HTTPResponse.Status(code: status),
                headers: [:],
                body: .buffered(ByteBuffer()),
                endpoint: endpoint
            )
        )
    }

    @Test(arguments: [408, 429, 503, 504])
    func overloadAnswersAreDrops(status: Int) {
        #expect(UpstreamClient.concurrencySignal(answer(status)) == .dropped)
    }

    @Test(arguments: [200, 201, 204, 304, 400, 401, 403, 404, 409, 410, 422])
    func handledCallsAndTheCallersMistakesAreSuccesses(status: Int) {
        #expect(UpstreamClient.concurrencySignal(answer(status)) == .success)
    }

    @Test(arguments: [500, 501, 502])
    func otherServerErrorsTellNothing(status: Int) {
        #expect(UpstreamClient.concurrencySignal(answer(status)) == .ignored)
    }

    @Test func failuresAreDropsOnlyWhenTheyAreTheUpstreamsOverload() {
        func signal(_ error: any Error) -> ConcurrencySignal { UpstreamClient.concurrencySignal(.failure(error)) }
        #expect(signal(UpstreamFailure(kind: .timeout, endpoint: endpoint, detail: "read timeout")) == .dropped)
        #expect(signal(UpstreamFailure(kind: .reset, endpoint: endpoint, detail: "connection closed")) == .dropped)
        #expect(signal(ResilienceError(code: .timeout, strategy: "pay-attempt-timeout", message: "2s")) == .dropped)
        // Nothing was sent, or nothing says how much the upstream takes.
        #expect(signal(UpstreamFailure(kind: .connect, endpoint: endpoint, detail: "refused")) == .ignored)
        #expect(signal(UpstreamFailure(kind: .other, endpoint: endpoint, detail: "TLS")) == .ignored)
        // The caller's doing.
        var callers = ResilienceError(code: .timeout, strategy: "pay-attempt-timeout", message: "Belay-Timeout")
        callers.deadlineOrigin = .caller
        #expect(signal(callers) == .ignored)
        #expect(signal(RequestBodyError(code: .tooLarge, limit: 10)) == .ignored)
        #expect(signal(RequestRefusal(reason: "a TRACE request must not have a body")) == .ignored)
        #expect(signal(CancellationError()) == .ignored)
        // The policy's own refusals.
        for code in [ResilienceError.Code.circuitOpen, .bulkheadFull, .rateLimited, .concurrencyLimited] {
            #expect(signal(ResilienceError(code: code, strategy: "pay", message: "refused")) == .ignored)
        }
        #expect(Fault.of(ResilienceError(code: .concurrencyLimited, strategy: "pay", message: "refused")) == .policy)
    }
}
