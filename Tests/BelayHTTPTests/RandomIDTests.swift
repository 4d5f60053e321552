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
}
