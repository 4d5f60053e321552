import BelayGateway
import Crypto
import Foundation
import HTTPTypes

/// A webhook delivery to each signature scheme's verifier: a first byte of flags, header lines
/// (`Name: value`) up to a blank line, then the raw body. With the flag's low bit set the
/// harness adds a valid signature (over the fuzzed id, timestamp and body), so the fuzzer
/// also reaches the timestamp, tolerance and event-id steps after a signature matched.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebhookSignatures(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let flags = bytes.first else { return 0 }
    let rest = bytes[1...]
    let blank = rest.indices.first { rest[$0] == 0x0A && $0 + 1 < rest.endIndex && rest[$0 + 1] == 0x0A }
    let head = String(decoding: rest[..<(blank ?? rest.endIndex)], as: UTF8.self)
    let body = Data(blank.map { rest[($0 + 2)...] } ?? rest[rest.endIndex...])
    var fields = HTTPFields()
    for line in head.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":"), let name = HTTPField.Name(String(line[..<colon])) else { continue }
        fields.append(HTTPField(name: name, value: String(line[line.index(after: colon)...])))
    }
    let sign = flags & 1 == 1
    let now = Date(timeIntervalSince1970: 1_700_000_000)
    for (source, signature) in Harness.sources {
        var headers = fields
        if sign { signature(&headers, body) }
        _ = Harness.verifiers[source.name]?.verify(body: body, headers: headers, now: now)
    }
    return 0
}

enum Harness {
    static let standardSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let stripeSecret = "whsec_fuzz"
    static let secret = "fuzz-secret"

    typealias Sign = @Sendable (inout HTTPFields, Data) -> Void

    static let sources: [(GatewayConfig.WebhookSource, Sign)] = [
        (
            .init(name: "standard", scheme: .standardWebhooks, secrets: [Secret(standardSecret)]),
            { headers, body in
                let id = headers[HTTPField.Name("webhook-id")!] ?? ""
                let timestamp = headers[HTTPField.Name("webhook-timestamp")!] ?? ""
                let key = SymmetricKey(data: Data(base64Encoded: String(standardSecret.dropFirst(6)))!)
                let mac = mac(Data("\(id).\(timestamp).".utf8) + body, key: key)
                headers.append(
                    HTTPField(name: HTTPField.Name("webhook-signature")!, value: "v1,\(mac.base64EncodedString())")
                )
            }
        ),
        (
            .init(name: "stripe", scheme: .stripe, secrets: [Secret(stripeSecret)]),
            { headers, body in
                let timestamp = headers[HTTPField.Name("X-Fuzz-T")!] ?? "1700000000"
                let mac = mac(Data("\(timestamp).".utf8) + body, key: SymmetricKey(data: Data(stripeSecret.utf8)))
                headers.append(
                    HTTPField(name: HTTPField.Name("Stripe-Signature")!, value: "t=\(timestamp),v1=\(hex(mac))")
                )
            }
        ),
        (
            .init(name: "github", scheme: .github, secrets: [Secret(secret)]),
            { headers, body in
                let mac = mac(body, key: SymmetricKey(data: Data(secret.utf8)))
                headers.append(HTTPField(name: HTTPField.Name("X-Hub-Signature-256")!, value: "sha256=\(hex(mac))"))
            }
        ),
        (
            .init(
                name: "hmac-pointer",
                scheme: .hmac,
                secrets: [Secret(secret)],
                hmac: .init(header: "X-Signature", encoding: .base64),
                idPointer: "/event/id"
            ),
            { headers, body in
                let mac = mac(body, key: SymmetricKey(data: Data(secret.utf8)))
                headers.append(HTTPField(name: HTTPField.Name("X-Signature")!, value: mac.base64EncodedString()))
            }
        ),
        (
            .init(
                name: "hmac-header",
                scheme: .hmac,
                secrets: [Secret(secret)],
                hmac: .init(header: "X-Signature", algorithm: .sha512, prefix: "sha512=", idHeader: "X-Event-Id")
            ),
            { headers, body in
                let mac = Data(HMAC<SHA512>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8))))
                headers.append(HTTPField(name: HTTPField.Name("X-Signature")!, value: "sha512=\(hex(mac))"))
            }
        ),
    ]

    static let verifiers: [String: WebhookVerifier] = Dictionary(
        uniqueKeysWithValues: sources.map { source, _ in (source.name, try! WebhookVerifier(source: source)) }
    )

    static func mac(_ message: Data, key: SymmetricKey) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: message, using: key))
    }

    static func hex(_ bytes: Data) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
