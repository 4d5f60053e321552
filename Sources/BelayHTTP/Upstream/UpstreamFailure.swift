import AsyncHTTPClient
import Belay
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Why an attempt to reach an upstream failed without an HTTP answer.
public struct UpstreamFailure: Error, Sendable, CustomStringConvertible {
    /// The class of failure, as retry conditions and the audit trail name it.
    public enum Kind: String, Sendable, Hashable {
        /// The connection could not be established (refused, unreachable, connect timeout).
        case connect
        /// The connection broke before the answer was complete.
        case reset
        /// The attempt ran out of time.
        case timeout
        /// Anything else (TLS, protocol errors).
        case other
    }

    /// The class of failure.
    public var kind: Kind
    /// The endpoint that failed.
    public var endpoint: UpstreamEndpoint
    /// A short description without secrets.
    public var detail: String

    /// Creates a failure.
    public init(kind: Kind, endpoint: UpstreamEndpoint, detail: String) {
        self.kind = kind
        self.endpoint = endpoint
        self.detail = detail
    }

    public var description: String { "\(kind.rawValue) failure at \(endpoint): \(detail)" }

    /// The refusal, if AsyncHTTPClient refused to send the request as it was before anything
    /// went out (the caller's fault, not the endpoint's).
    public static func refusal(in error: any Error) -> RequestRefusal? {
        guard let client = error as? HTTPClientError else { return nil }
        let reasons: [(HTTPClientError, String)] = [
            (.traceRequestWithBody, "a TRACE request must not have a body"),
            (.invalidHeaderFieldNames([]), "a header name is not a valid HTTP token"),
            (.invalidHeaderFieldValues([]), "a header value holds characters HTTP does not allow"),
            (.bodyLengthMismatch, "the body's length differs from its Content-Length"),
            (.identityCodingIncorrectlyPresent, "Transfer-Encoding: identity is not allowed"),
            (.invalidURL, "the target is not a valid URL"),
        ]
        // `shortDescription` names the code without the values it may carry (header values
        // can be secrets).
        for (refused, reason) in reasons where client.shortDescription == refused.shortDescription {
            return RequestRefusal(reason: reason)
        }
        return nil
    }

    /// Classifies an error thrown while calling `endpoint`.
    public static func classify(_ error: any Error, endpoint: UpstreamEndpoint) -> UpstreamFailure {
        if let failure = error as? UpstreamFailure { return failure }
        if let client = error as? HTTPClientError {
            switch client {
            case .connectTimeout: return .init(kind: .connect, endpoint: endpoint, detail: "connect timeout")
            case .remoteConnectionClosed: return .init(kind: .reset, endpoint: endpoint, detail: "connection closed")
            case .readTimeout, .deadlineExceeded: return .init(kind: .timeout, endpoint: endpoint, detail: "\(client)")
            default: return .init(kind: .other, endpoint: endpoint, detail: "\(client)")
            }
        }
        if let resilience = error as? ResilienceError, resilience.code == .timeout {
            return .init(kind: .timeout, endpoint: endpoint, detail: resilience.message)
        }
        if error is NIOConnectionError {
            return .init(kind: .connect, endpoint: endpoint, detail: "connection refused or unreachable")
        }
        if let channel = error as? ChannelError {
            switch channel {
            case .connectTimeout: return .init(kind: .connect, endpoint: endpoint, detail: "connect timeout")
            case .ioOnClosedChannel, .outputClosed, .inputClosed, .alreadyClosed, .eof:
                return .init(kind: .reset, endpoint: endpoint, detail: "connection closed")
            default: return .init(kind: .other, endpoint: endpoint, detail: "\(channel)")
            }
        }
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ETIMEDOUT:
                return .init(kind: .connect, endpoint: endpoint, detail: "connect failed (errno \(io.errnoCode))")
            case ECONNRESET, EPIPE, ECONNABORTED:
                return .init(kind: .reset, endpoint: endpoint, detail: "connection reset (errno \(io.errnoCode))")
            default:
                return .init(kind: .other, endpoint: endpoint, detail: "I/O error (errno \(io.errnoCode))")
            }
        }
        if let detail = tlsDetail(error) {
            return .init(kind: .other, endpoint: endpoint, detail: detail)
        }
        return .init(kind: .other, endpoint: endpoint, detail: String(describing: type(of: error)))
    }

    /// What went wrong with TLS, in words, if `error` is a TLS failure: e.g. `TLS handshake
    /// failed: certificate verify failed` (the endpoint's certificate is not trusted), or
    /// `TLS: …failedToValidateHostname: Couldn't find api.pay.example in certificate from peer`
    /// (it names another host). Never retried: a certificate
    /// does not become trusted by asking again.
    static func tlsDetail(_ error: any Error) -> String? {
        switch error {
        case let ssl as NIOSSLError:
            if case .handshakeFailed(let boring) = ssl { return "TLS handshake failed: \(reasons(boring))" }
            return "TLS: \(ssl)"
        case let boring as BoringSSLError:
            return "TLS failed: \(reasons(boring))"
        case let extra as NIOSSLExtraError:
            return "TLS: \(extra)"
        default:
            return nil
        }
    }

    /// BoringSSL's reasons, e.g. `certificate verify failed` for `…:CERTIFICATE_VERIFY_FAILED`.
    private static func reasons(_ error: BoringSSLError) -> String {
        guard case .sslError(let errors) = error, !errors.isEmpty else { return "\(error)" }
        // Each reads `Error: <code> error:<hex>:<library>:<function>:<REASON> at <file>:<line>`.
        return errors.map { entry in
            var text = "\(entry)"
            if let at = text.range(of: " at ") { text = String(text[..<at.lowerBound]) }
            let reason = text.split(separator: ":").last.map(String.init) ?? text
            return reason.lowercased().replacingOccurrences(of: "_", with: " ")
        }.joined(separator: "; ")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
