import BelayHTTP
import Foundation
import Testing

@Suite struct RandomIDTests {
    @Test func isALowercaseVersion4UUID() throws {
        for _ in 0..<600 {  // past one refill of the buffer
            let id = RandomID.uuidString()
            let parsed = try #require(UUID(uuidString: id))
            #expect(parsed.uuidString.lowercased() == id)
            let bytes = parsed.uuid
            #expect(bytes.6 >> 4 == 4)
            #expect(bytes.8 >> 6 == 0b10)
        }
    }

    @Test func neverRepeats() {
        let ids = (0..<10_000).map { _ in RandomID.uuidString() }
        #expect(Set(ids).count == ids.count)
        // The random digits take every value (the bytes are not stuck).
        #expect(Set(ids.map(\.first)).count == 16)
    }

    @Test func timeOrderedIdsAreVersion7WithTheirMillisecondsFirst() throws {
        // RFC 9562 appendix A.6: 2022-02-22 19:22:22.000 UTC is 0x017F22E279B0.
        let id = RandomID.timeOrderedUUIDString(unixMilliseconds: 0x017F_22E2_79B0)
        #expect(id.hasPrefix("017f22e2-79b0-7"))
        let bytes = try #require(UUID(uuidString: id)).uuid
        #expect(bytes.6 >> 4 == 7)
        #expect(bytes.8 >> 6 == 0b10)
        let later = (0..<1_000).map { RandomID.timeOrderedUUIDString(unixMilliseconds: 1_700_000_000_000 + UInt64($0)) }
        #expect(later == later.sorted())
        #expect(Set(later).count == later.count)
    }
}
