/// Comparisons whose running time does not depend on where two byte strings differ.
///
/// Comparing a computed MAC with a received one by `==` returns at the first differing
/// byte, so an attacker who can time the answers learns a valid MAC byte by byte. This
/// comparison always reads every byte.
enum ConstantTime {
    /// Whether `lhs` and `rhs` hold the same bytes.
    ///
    /// Only the lengths are compared early (a MAC's length is public); the contents are
    /// always read in full, without a data-dependent branch.
    static func isEqual(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(lhs, rhs) {
            difference |= a ^ b
        }
        return difference == 0
    }
}
