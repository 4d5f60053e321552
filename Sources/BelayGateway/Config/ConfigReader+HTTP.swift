import Foundation
import Yams

/// Values Belay sends on its own account: the URLs it calls and the headers it adds. Each is
/// checked as the HTTP client will check it, so that a mistake in the config is reported when
/// it loads (naming its key) instead of refusing every request later, where it would read as
/// the caller's bad request.
extension ConfigReader {
    /// An absolute `http`/`https` URL that the HTTP client can send to: printable ASCII only
    /// (no space or control character: percent-encode them), a host name or IP literal, a port
    /// from 1 to 65535, a path of valid characters and `%XX` escapes, and no credentials, query
    /// or fragment.
    mutating func url(_ node: Node, at path: String) -> URLComponents? {
        guard let text = string(node, at: path) else { return nil }
        if let offset = text.unicodeScalars.firstIndex(where: { !(0x21...0x7E).contains($0.value) }) {
            let scalar = text.unicodeScalars[offset]
            let position = text.unicodeScalars.distance(from: text.unicodeScalars.startIndex, to: offset)
            report(
                path,
                node,
                "must be a URL of printable ASCII characters: it holds "
                    + "\(scalar.value == 0x20 ? "a space" : String(format: "U+%04X", scalar.value)) at offset "
                    + "\(position) (percent-encode it)"
            )
            return nil
        }
        // Checked on the text as written: a parser may quietly re-encode a stray '%'.
        let bytes = Array(text.utf8)
        if let percent = bytes.indices.first(where: { index in
            bytes[index] == UInt8(ascii: "%")
                && (index + 2 >= bytes.count || !Self.isHexDigit(bytes[index + 1])
                    || !Self.isHexDigit(bytes[index + 2]))
        }) {
            report(path, node, "has an invalid percent-encoding at offset \(percent): write '%' as %25")
            return nil
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.percentEncodedHost, !host.isEmpty
        else {
            report(path, node, "must be an absolute http:// or https:// URL (got '\(text)')")
            return nil
        }
        if components.percentEncodedUser != nil || components.percentEncodedPassword != nil {
            report(
                path,
                node,
                "must not carry credentials (user:password@): they would not be sent; an upstream takes them "
                    + "in headers with ${ENV} values"
            )
            return nil
        }
        if components.query != nil || components.fragment != nil {
            report(path, node, "must not have a query or fragment")
            return nil
        }
        guard Self.isHost(host) else {
            report(
                path,
                node,
                "has the host '\(host)', which is neither a host name (letters, digits, -, _ and .) "
                    + "nor an IP address ([…] around IPv6)"
            )
            return nil
        }
        if let port = components.port, !(1...65_535).contains(port) {
            report(path, node, "has the port \(port): must be from 1 to 65535")
            return nil
        }
        if let problem = DeliveryRequest.requestTargetProblem(components.percentEncodedPath) {
            report(path, node, "has an invalid path: \(problem)")
            return nil
        }
        // What the HTTP client itself parses (AsyncHTTPClient's `invalidURL`).
        guard let parsed = URL(string: text), let parsedHost = parsed.host, !parsedHost.isEmpty else {
            report(path, node, "is not a URL the HTTP client can send to (got '\(text)')")
            return nil
        }
        return components
    }

    /// A header value Belay sends itself (a policy's `headers:`, OTLP exporter headers): no
    /// CR, LF, NUL or other control character but a tab, which the HTTP client refuses to send.
    /// The value may be a secret: a problem names the key and the offset, never the value.
    mutating func headerValue(_ node: Node, at path: String) -> String? {
        guard let text = string(node, at: path) else { return nil }
        let scalars = text.unicodeScalars
        if let offset = scalars.firstIndex(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) {
            let position = scalars.distance(from: scalars.startIndex, to: offset)
            report(
                path,
                node,
                "holds the control character \(String(format: "U+%04X", scalars[offset].value)) at offset "
                    + "\(position), which a header value cannot (CR, LF, NUL and other control characters but a "
                    + "tab); the value is not shown"
            )
            return nil
        }
        return text
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        Unicode.Scalar(byte).properties.isASCIIHexDigit
    }

    /// A host name (letters, digits, `-`, `_`, `.`), or an IP literal in brackets.
    private static func isHost(_ host: String) -> Bool {
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return false }
            return host.dropFirst().dropLast().unicodeScalars.allSatisfy {
                $0.properties.isASCIIHexDigit || $0 == ":" || $0 == "."
            }
        }
        // Some platforms report an IPv6 host without its brackets.
        if host.contains(":") {
            return host.unicodeScalars.allSatisfy { $0.properties.isASCIIHexDigit || $0 == ":" || $0 == "." }
        }
        return host.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0))
        }
    }
}
