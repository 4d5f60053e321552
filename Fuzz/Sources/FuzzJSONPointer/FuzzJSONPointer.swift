@_spi(Fuzzing) import BelayGateway
import Foundation

/// An RFC 6901 pointer (the first line) evaluated in a JSON document (the rest, raw bytes).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONPointer(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
    let pointer = String(decoding: bytes[..<newline], as: UTF8.self)
    let body = Data(bytes[min(newline + 1, bytes.endIndex)...])
    _ = JSONPointerFuzzing.evaluate(pointer, in: body)
    return 0
}
