import Crypto

/// A Standard Webhooks key as configured: a symmetric `whsec_` secret (HMAC-SHA256, `v1`
/// signatures) or an ed25519 `whpk_` public key (`v1a` signatures).
enum StandardWebhooksKey: Sendable {
    /// Why a text is not a usable key. The message never contains the key.
    struct Invalid: Error, Sendable, Hashable {
        /// What is wrong, e.g. `must decode to 24–64 bytes (got 16)`.
        var message: String
    }

    /// The secret's prefix; the rest is the base64 of the key bytes.
    static let secretPrefix = "whsec_"
    /// The public key's prefix; the rest is the base64 of the 32-byte ed25519 key.
    static let publicKeyPrefix = "whpk_"
    /// The signing (private) key's prefix: it belongs with the sender, never in Belay's config.
    static let signingKeyPrefix = "whsk_"
    /// The sizes a `whsec_` secret may decode to, in bytes (the specification's 24–64).
    static let secretSizes = 24...64

    /// An HMAC-SHA256 key, for `v1` signatures.
    case secret(SymmetricKey)
    /// An ed25519 public key, for `v1a` signatures.
    case publicKey(Curve25519.Signing.PublicKey)

    /// Parses `text`; `whpk_` public keys are accepted only when `allowPublicKey` is true
    /// (they verify but cannot sign).
    static func parse(_ text: String, allowPublicKey: Bool) -> Result<Self, Invalid> {
        if text.hasPrefix(secretPrefix) {
            guard let bytes = ByteEncoding.bytes(base64: text.dropFirst(secretPrefix.count)) else {
                return .failure(Invalid(message: "is not valid base64 after whsec_"))
            }
            guard secretSizes.contains(bytes.count) else {
                return .failure(
                    Invalid(message: "must decode to 24–64 bytes after whsec_ (got \(bytes.count))")
                )
            }
            return .success(.secret(SymmetricKey(data: bytes)))
        }
        if text.hasPrefix(publicKeyPrefix) && allowPublicKey {
            guard let bytes = ByteEncoding.bytes(base64: text.dropFirst(publicKeyPrefix.count)) else {
                return .failure(Invalid(message: "is not valid base64 after whpk_"))
            }
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: bytes) else {
                return .failure(
                    Invalid(
                        message: "must decode to a 32-byte ed25519 public key after whpk_ (got \(bytes.count) bytes)"
                    )
                )
            }
            return .success(.publicKey(key))
        }
        if text.hasPrefix(signingKeyPrefix) {
            return .failure(
                Invalid(
                    message:
                        "is a private signing key (whsk_), which belongs with the sender: configure its public key (whpk_) instead"
                )
            )
        }
        return .failure(
            Invalid(
                message: allowPublicKey
                    ? "must be a Standard Webhooks secret (whsec_ + base64) or public key (whpk_ + base64)"
                    : "must be a Standard Webhooks secret starting with whsec_"
            )
        )
    }
}
