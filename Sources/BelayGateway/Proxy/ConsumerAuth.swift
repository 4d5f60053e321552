public import Belay
import Crypto
import Foundation
public import HTTPTypes

/// Who is calling, from `Authorization: Bearer <key>`, and what they may do.
///
/// With no consumers configured the gateway is in open mode (loopback only, enforced by
/// the config): every caller is the anonymous consumer with every scope.
public struct ConsumerAuth: Sendable {
    /// An authenticated caller.
    public struct Identity: Sendable {
        /// The consumer's name, or `anonymous` in open mode.
        public var name: String
        /// Its scopes.
        public var scopes: [String]
        /// Its inbound rate limiter, if it has a limit.
        var limiter: RateLimiter<ContinuousClock>?

        /// Whose answers a call's are, for the stale-if-error cache: the consumer's name, plus a
        /// SHA-256 digest of the credentials forwarded upstream (`Authorization` in open mode,
        /// `Cookie`) when there are any. Never a raw credential.
        public func cacheScope(forwarding headers: HTTPFields) -> String {
            var credentials: [String] = []
            if let authorization = headers[.authorization] { credentials.append("authorization:\(authorization)") }
            for cookie in headers[values: .cookie] { credentials.append("cookie:\(cookie)") }
            guard !credentials.isEmpty else { return name }
            let digest = SHA256.hash(data: Data(credentials.joined(separator: "\n").utf8))
            return "\(name)#" + digest.map { String(format: "%02x", $0) }.joined()
        }

        /// No consumer, with no scope: the caller of a route that requires none.
        public static let nobody = Identity(name: "nobody", scopes: [], limiter: nil)

        /// Whether a scope grants `needed` (`proxy:*` grants every `proxy:<upstream>`; `admin` grants all).
        public func allows(_ needed: String) -> Bool {
            scopes.contains { $0 == needed || $0 == "admin" || ($0 == "proxy:*" && needed.hasPrefix("proxy:")) }
        }
    }

    /// Why a caller was refused.
    public enum Refusal: Error, Sendable {
        case missingKey
        case unknownKey
    }

    private let consumers: [String: Identity]
    /// Every caller in open mode.
    private static let anonymous = Identity(name: "anonymous", scopes: ["admin"], limiter: nil)

    /// Whether consumers are configured (the `Authorization` header is Belay's, not forwarded).
    public var isOpenMode: Bool { consumers.isEmpty }

    /// Creates the authenticator for the configured consumers.
    ///
    /// Throws when a key hash is not 64 hex digits (either case), when two consumers have the
    /// same key (it would authenticate as only one of them), or when a rate limit is invalid.
    public init(consumers: [GatewayConfig.Consumer]) throws(ConfigurationError) {
        var table: [String: Identity] = [:]
        var issues: [ConfigurationError.Issue] = []
        for consumer in consumers {
            // `identify` looks keys up by their lowercase hex digest.
            let hash = consumer.keySHA256.lowercased()
            guard hash.utf8.count == 64,
                hash.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
            else {
                issues.append(.init(option: "\(consumer.name).keySHA256", message: "must be 64 hex digits"))
                continue
            }
            if let owner = table[hash] {
                issues.append(
                    .init(option: "\(consumer.name).keySHA256", message: "is the same key as consumer '\(owner.name)'s")
                )
                continue
            }
            var limiter: RateLimiter<ContinuousClock>?
            if let limit = consumer.rateLimit {
                do {
                    limiter = try RateLimiter(
                        .init(permitsPerSecond: limit.rps, burst: limit.burst, name: consumer.name)
                    )
                } catch {
                    issues += error.issues
                }
            }
            table[hash] = Identity(name: consumer.name, scopes: consumer.scopes, limiter: limiter)
        }
        guard issues.isEmpty else { throw ConfigurationError(issues: issues) }
        self.consumers = table
    }

    /// The caller of a request with these headers: its key from `Authorization: Bearer <key>`,
    /// or with `acceptBasic` also from `Authorization: Basic` with the key as the password (the
    /// user name is ignored): what a browser sends for a page that asks with
    /// `WWW-Authenticate: Basic`.
    public func identify(_ headers: HTTPFields, acceptBasic: Bool = false) -> Result<Identity, Refusal> {
        if consumers.isEmpty {
            return .success(Self.anonymous)
        }
        guard let authorization = headers[.authorization],
            let key = Self.key(in: authorization, acceptBasic: acceptBasic)
        else { return .failure(.missingKey) }
        let digest = SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
        guard let identity = consumers[digest] else { return .failure(.unknownKey) }
        return .success(identity)
    }

    /// The key in an `Authorization` value, if it carries one.
    private static func key(in authorization: String, acceptBasic: Bool) -> String? {
        let lowercased = authorization.lowercased()
        if lowercased.hasPrefix("bearer ") {
            let key = authorization.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
            return key.isEmpty ? nil : key
        }
        guard acceptBasic, lowercased.hasPrefix("basic "),
            let decoded = Data(
                base64Encoded: authorization.dropFirst("basic ".count).trimmingCharacters(in: .whitespaces)
            ),
            let pair = String(data: decoded, encoding: .utf8), let colon = pair.firstIndex(of: ":")
        else { return nil }
        let password = String(pair[pair.index(after: colon)...])
        return password.isEmpty ? nil : password
    }
}
