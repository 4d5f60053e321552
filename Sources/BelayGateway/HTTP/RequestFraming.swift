import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// How a request's body is framed, and the framings RFC 9112 §6 makes an error: checked on
/// every head before it is routed (``ConnectionGuard``).
///
/// The only transfer coding accepted is `chunked`, alone: any other coding (`gzip`,
/// `identity`, an unknown token), `chunked` applied twice or not last, and several
/// `Transfer-Encoding` lines are refused, as are `Content-Length` beside `Transfer-Encoding`
/// and a `Content-Length` given more than once (even with equal values).
enum RequestFraming {
    /// Why a request's framing is refused: the header at fault and what is wrong with it.
    struct Refusal: Sendable, Hashable {
        var field: String
        var detail: String
    }

    /// Why `fields` frame a body in a way that is refused; nil if they do not.
    static func refusal(for fields: HTTPFields) -> Refusal? {
        let codings = fields[values: .transferEncoding]
        let lengths = fields[values: .contentLength]
        if !codings.isEmpty {
            let tokens = codings.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
                .map { $0.trimmingCharacters(in: " \t").lowercased() }
            guard tokens == ["chunked"] else {
                let given = codings.joined(separator: ", ")
                return Refusal(
                    field: "Transfer-Encoding",
                    detail: "Transfer-Encoding must be 'chunked' alone: no other transfer coding is supported "
                        + "(got '\(String(given.prefix(64)))')"
                )
            }
            if !lengths.isEmpty {
                return Refusal(
                    field: "Content-Length",
                    detail: "a request may not carry both Content-Length and Transfer-Encoding"
                )
            }
        }
        if lengths.count > 1 || lengths.contains(where: { $0.contains(",") }) {
            return Refusal(field: "Content-Length", detail: "Content-Length must be given once")
        }
        return nil
    }

    /// Whether `fields` frame the body in chunks (once ``refusal(for:)`` has passed them).
    static func isChunked(_ fields: HTTPFields) -> Bool {
        guard let coding = fields[.transferEncoding] else { return false }
        return coding.trimmingCharacters(in: " \t").lowercased() == "chunked"
    }

    /// Why the HTTP decoder refused a request, from its `error` and the bytes of the head it
    /// was reading (`head`: nil when the head had been read and the body was refused); nil if
    /// `error` is no decoding error.
    static func refusal(forDecoding error: any Error, head: String?) -> Refusal? {
        guard let head else {
            guard error is HTTPParserError else { return nil }
            return Refusal(field: "body", detail: "the request body is not framed as its head declares")
        }
        if let conversion = error as? HTTP1TypeConversionError {
            switch conversion {
            case .invalidMethod: return Refusal(field: "method", detail: "the request method is invalid")
            case .missingPath: return Refusal(field: "path", detail: "the request target is missing or invalid")
            default: return Refusal(field: "headers", detail: "the request head is invalid")
            }
        }
        guard let parser = error as? HTTPParserError else { return nil }
        let names = Set(
            head.split(whereSeparator: \.isNewline).dropFirst().compactMap { line in
                line.firstIndex(of: ":").map { line[..<$0].lowercased() }
            }
        )
        let both = names.contains("transfer-encoding") && names.contains("content-length")
        let bothRefusal = Refusal(
            field: "Content-Length",
            detail: "a request may not carry both Content-Length and Transfer-Encoding"
        )
        switch parser {
        case .invalidContentLength, .unexpectedContentLength:
            if both { return bothRefusal }
            return Refusal(field: "Content-Length", detail: "Content-Length must be given once, as a number")
        case .invalidMethod:
            return Refusal(field: "method", detail: "the request method is invalid")
        case .invalidURL:
            return Refusal(field: "path", detail: "the request target is invalid")
        case .invalidVersion:
            return Refusal(field: "version", detail: "the HTTP version is invalid: send HTTP/1.1")
        case .headerOverflow:
            return Refusal(field: "headers", detail: "the request head is too large")
        default:
            // llhttp reports a refused transfer coding as an unnamed error.
            if both { return bothRefusal }
            if names.contains("transfer-encoding") {
                return Refusal(
                    field: "Transfer-Encoding",
                    detail: "Transfer-Encoding must be 'chunked' alone, on one line: no other transfer coding "
                        + "is supported"
                )
            }
            return Refusal(field: "headers", detail: "the request head is not valid HTTP/1.1")
        }
    }
}

extension StringProtocol {
    /// The text without the leading and trailing characters of `characters`.
    fileprivate func trimmingCharacters(in characters: String) -> String {
        let set = Set(characters)
        guard let first = firstIndex(where: { !set.contains($0) }) else { return "" }
        let last = lastIndex { !set.contains($0) } ?? first
        return String(self[first...last])
    }
}
