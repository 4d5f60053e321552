import BelayGateway

/// A request path as the proxy splits it into upstream and path: refused or split, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProxyPath(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = ProxyPath.split(text)
    // Most mutations lose the prefix: try the bytes below it as well.
    if case .success(let split) = ProxyPath.split("/proxy/" + text) {
        precondition(split.path.utf8.first == UInt8(ascii: "/"), "a split path starts with /")
        precondition(
            !split.upstream.isEmpty && !split.upstream.utf8.contains(UInt8(ascii: "/")),
            "an upstream name is one segment"
        )
    }
    return 0
}
