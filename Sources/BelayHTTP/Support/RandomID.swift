import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Random identifiers in UUID form (version 4, lowercase hex), e.g.
/// `8e03978e-40d5-43e8-bc93-6894a57f9324`: request ids and generated idempotency keys.
///
/// Foundation's `UUID()` opens, reads and closes `/dev/urandom` for every identifier on
/// Linux; this takes the bytes from a buffer the system's generator (`arc4random_buf`)
/// refills 4 KiB at a time, so one identifier costs no system call.
///
/// ```swift
/// let requestID = RandomID.uuidString()
/// ```
public enum RandomID {
    private struct Pool: ~Copyable {
        private var bytes: UnsafeMutableRawBufferPointer
        private var next: Int

        init(size: Int) {
            bytes = .allocate(byteCount: size, alignment: 16)
            next = size
        }

        deinit { bytes.deallocate() }

        /// The next 16 random bytes.
        mutating func take16() -> (UInt64, UInt64) {
            if next + 16 > bytes.count {
                arc4random_buf(bytes.baseAddress!, bytes.count)
                next = 0
            }
            defer { next += 16 }
            return (
                bytes.loadUnaligned(fromByteOffset: next, as: UInt64.self),
                bytes.loadUnaligned(fromByteOffset: next + 8, as: UInt64.self)
            )
        }
    }

    private static let pool = Mutex(Pool(size: 4096))

    /// A new random identifier: a version-4 UUID in lowercase, 36 characters.
    public static func uuidString() -> String {
        var (high, low) = pool.withLock { $0.take16() }
        // Version 4 (random) and the RFC 9562 variant, as `UUID()` sets them.
        high = (high & ~(0xF << 12)) | (0x4 << 12)
        low = (low & ~(0b11 << 62)) | (0b10 << 62)
        return format(high, low)
    }

    /// A new time-ordered identifier: a version-7 UUID (RFC 9562 §5.7) in lowercase, whose
    /// first 48 bits are `unixMilliseconds` and the other 74 random.
    ///
    /// Identifiers made later sort later (to the millisecond), so a database index of them
    /// grows at its end instead of at random places: the audit trail, keyed by request id,
    /// then dirties a few pages per write instead of one per row.
    public static func timeOrderedUUIDString(unixMilliseconds: UInt64) -> String {
        var (high, low) = pool.withLock { $0.take16() }
        high = ((unixMilliseconds & 0xFFFF_FFFF_FFFF) << 16) | (0x7 << 12) | (high & 0xFFF)
        low = (low & ~(0b11 << 62)) | (0b10 << 62)
        return format(high, low)
    }

    /// `high` and `low` as the 8-4-4-4-12 hex form.
    private static func format(_ high: UInt64, _ low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            let digits: StaticString = "0123456789abcdef"
            var index = 0
            func write(_ value: UInt64, nibbles: Int, shift: Int) {
                for nibble in stride(from: nibbles - 1, through: 0, by: -1) {
                    let digit = Int((value >> UInt64(shift + nibble * 4)) & 0xF)
                    buffer[index] = digits.utf8Start[digit]
                    index += 1
                }
            }
            func dash() {
                buffer[index] = UInt8(ascii: "-")
                index += 1
            }
            write(high, nibbles: 8, shift: 32)
            dash()
            write(high, nibbles: 4, shift: 16)
            dash()
            write(high, nibbles: 4, shift: 0)
            dash()
            write(low, nibbles: 4, shift: 48)
            dash()
            write(low, nibbles: 12, shift: 0)
            return index
        }
    }
}
