/// Splits and checks `/proxy/{upstream}/{path…}` so that no request escapes its upstream.
///
/// The upstream's path is forwarded as received (still percent-encoded), after checking
/// that no segment is `.` or `..` in any encoding and that no encoded `/` or `\` could be
/// turned into one by a server further on.
public enum ProxyPath {
    /// The upstream's name and the path below it (starting with `/`), or why it is refused.
    public static func split(_ rawPath: String) -> Result<(upstream: String, path: String), Rejection> {
        // Byte by byte, never by `Character`: a `/` after a "prepend" scalar such as U+0602 is
        // one `Character` with it, yet a server further on reads it as a separator.
        let slash = UInt8(ascii: "/")
        let utf8 = rawPath.utf8
        guard utf8.starts(with: "/proxy/".utf8) else { return .failure(.notProxy) }
        let rest = Substring(utf8.dropFirst("/proxy/".utf8.count))
        let upstream: Substring
        let path: Substring
        if let index = rest.utf8.firstIndex(of: slash) {
            upstream = rest[..<index]
            path = rest[index...]
        } else {
            upstream = rest
            path = "/"
        }
        guard !upstream.isEmpty, let name = decode(upstream), !name.utf8.contains(slash) else {
            return .failure(.missingUpstream)
        }
        for segment in path.utf8.split(separator: slash, omittingEmptySubsequences: false) {
            // Most segments have no escapes: checked in place, without decoding a copy.
            let decoded: Substring.UTF8View
            if segment.contains(UInt8(ascii: "%")) {
                guard let text = decode(Substring(segment)) else { return .failure(.badEncoding) }
                decoded = Substring(text).utf8
            } else {
                decoded = segment
            }
            if decoded.elementsEqual(".".utf8) || decoded.elementsEqual("..".utf8) { return .failure(.dotSegment) }
            // A raw segment holds no `/`: one in the decoded text was encoded.
            if decoded.contains(where: { $0 == slash || $0 == UInt8(ascii: "\\") }) {
                return .failure(.encodedSeparator)
            }
            if decoded.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
                return .failure(.controlCharacter)
            }
        }
        return .success((name, String(path)))
    }

    /// Why a proxy path was refused.
    public enum Rejection: Error, Sendable, Hashable, CustomStringConvertible {
        case notProxy, missingUpstream, badEncoding, dotSegment, encodedSeparator, controlCharacter

        public var description: String {
            switch self {
            case .notProxy: "not a proxy path"
            case .missingUpstream: "the path names no upstream: use /proxy/{upstream}/{path}"
            case .badEncoding: "the path has an invalid percent-encoding"
            case .dotSegment: "the path has a '.' or '..' segment, which could escape the upstream's base path"
            case .encodedSeparator: "the path has an encoded '/' or '\\', which could escape the upstream's base path"
            case .controlCharacter: "the path has a control character"
            }
        }
    }

    /// Percent-decodes a segment; nil if the encoding is invalid or not UTF-8.
    static func decode(_ segment: Substring) -> String? {
        guard segment.utf8.contains(UInt8(ascii: "%")) else { return String(segment) }
        var bytes: [UInt8] = []
        var iterator = segment.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
