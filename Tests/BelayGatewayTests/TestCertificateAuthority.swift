import BelayTestUpstream
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// A private certificate authority made in the test (P-256, swift-certificates), writing what
/// it issues as PEM files in a temporary folder of its own: no openssl, no process started.
struct TestCertificateAuthority {
    /// A certificate it issued, its key, and their PEM files.
    struct Issued {
        var certificate: Certificate
        var key: P256.Signing.PrivateKey
        /// The PEM file of the certificate (and, with `chain`, the CA after it).
        var certificatePath: String
        /// The PEM file of the key (PKCS #8).
        var keyPath: String

        /// The certificate as NIOSSL reads it.
        var niosslCertificate: NIOSSLCertificate {
            get throws {
                try NIOSSLCertificate(bytes: Array(certificate.serializeAsPEM().pemString.utf8), format: .pem)
            }
        }

        /// The key as NIOSSL reads it.
        var niosslKey: NIOSSLPrivateKey {
            get throws { try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem) }
        }
    }

    let name: DistinguishedName
    let key = P256.Signing.PrivateKey()
    let certificate: Certificate
    /// Where the files are; ``remove()`` deletes it.
    let folder: URL
    /// The PEM file of the CA's certificate.
    let certificatePath: String

    /// A new CA named `commonName`, valid from an hour ago for ten years.
    init(_ commonName: String = "Belay Test CA") throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        name = try DistinguishedName { CommonName(commonName) }
        let now = Date()
        certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now - 3_600,
            notValidAfter: now + 10 * 365 * 86_400,
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key)
        )
        certificatePath = folder.appendingPathComponent("ca.pem").path
        try certificate.serializeAsPEM().pemString.write(toFile: certificatePath, atomically: true, encoding: .utf8)
    }

    /// The CA's certificate as NIOSSL reads it (a trust root).
    var niosslCertificate: NIOSSLCertificate {
        get throws { try NIOSSLCertificate(bytes: Array(certificate.serializeAsPEM().pemString.utf8), format: .pem) }
    }

    /// Issues a certificate for `names` (DNS) and `addresses` (IPv4, four bytes each), for
    /// servers and clients both, written as `<label>.pem` and `<label>.key`; with `chain`, the
    /// certificate file holds the CA's certificate after the leaf. `validFor` from an hour ago
    /// (negative: expired).
    func issue(
        _ label: String,
        names: [String] = ["localhost"],
        addresses: [[UInt8]] = [[127, 0, 0, 1]],
        chain: Bool = false,
        validFor: TimeInterval = 5 * 365 * 86_400
    ) throws -> Issued {
        let leafKey = P256.Signing.PrivateKey()
        let now = Date()
        let alternatives =
            names.map { GeneralName.dnsName($0) }
            + addresses.map { GeneralName.ipAddress(ASN1OctetString(contentBytes: ArraySlice($0))) }
        let leaf = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(leafKey.publicKey),
            notValidBefore: now - 3_600,
            notValidAfter: now + validFor,
            issuer: name,
            subject: try DistinguishedName { CommonName(label) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(alternatives)
            },
            issuerPrivateKey: .init(key)
        )
        let certificatePath = folder.appendingPathComponent("\(label).pem").path
        let keyPath = folder.appendingPathComponent("\(label).key").path
        var pem = try leaf.serializeAsPEM().pemString + "\n"
        if chain { pem += try certificate.serializeAsPEM().pemString + "\n" }
        try pem.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        try leafKey.pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
        return Issued(certificate: leaf, key: leafKey, certificatePath: certificatePath, keyPath: keyPath)
    }

    /// A file in the CA's folder holding `text`, for malformed inputs.
    func write(_ text: String, as name: String) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A test upstream's TLS: `issued` serving, and with `requiringClientsOf`, mutual TLS.
    func upstreamTLS(
        _ issued: Issued,
        requiringClientsOf clientCA: TestCertificateAuthority? = nil
    ) throws
        -> TestUpstream.TLS
    {
        TestUpstream.TLS(
            certificateChain: [try issued.niosslCertificate],
            privateKey: try issued.niosslKey,
            clientCA: try clientCA.map { [try $0.niosslCertificate] }
        )
    }

    /// Deletes the CA's folder.
    func remove() {
        try? FileManager.default.removeItem(at: folder)
    }
}
