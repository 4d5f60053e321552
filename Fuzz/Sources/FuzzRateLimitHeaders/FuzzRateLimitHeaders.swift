import BelayHTTP
import HTTPTypes

/// A provider's answer headers: the first line is a `Retry-After` value, every line of the
/// form `Name: value` is a header field read by `RateLimitHeaders`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRateLimitHeaders(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    let first = lines.first ?? ""
    for now: Int64 in [0, 1_700_000_000] {
        if let delay = RetryAfter.parse(first, now: now) {
            precondition(delay >= .zero, "Retry-After is never negative")
        }
    }
    var fields = HTTPFields()
    for line in lines {
        guard let colon = line.firstIndex(of: ":"), let name = HTTPField.Name(String(line[..<colon])) else { continue }
        fields.append(HTTPField(name: name, value: String(line[line.index(after: colon)...])))
    }
    let read = RateLimitHeaders(fields)
    if let reset = read.resetAfter { _ = reset.wholeSecondsRoundedUp }
    return 0
}
