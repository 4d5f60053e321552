import Foundation
import NIOSSL
import Yams

extension ConfigLoader {
    /// `server.tls: { cert, key }`: both PEM files are read now, so `check-config` finds a
    /// missing or unreadable file, a file that holds no certificate or key, and a key that does
    /// not match the certificate, each at its key path.
    func readServerTLS(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        let path = "server.tls"
        var chain: (file: String, certificates: [NIOSSLCertificate])?
        var key: (file: String, key: NIOSSLPrivateKey)?
        var sawCert = false
        var sawKey = false
        for (field, value) in reader.mapping(node, at: path, allowed: ["cert", "key"]) ?? [] {
            switch field {
            case "cert":
                sawCert = true
                chain = reader.certificates(value, at: "\(path).cert")
            case "key":
                sawKey = true
                key = reader.privateKey(value, at: "\(path).key")
            default: break
            }
        }
        guard node.mapping != nil else { return }
        if !sawCert { reader.report("\(path).cert", node, "is required: the PEM file of the certificate chain") }
        if !sawKey { reader.report("\(path).key", node, "is required: the PEM file of the certificate's private key") }
        guard let chain, let key else { return }
        let tls = GatewayConfig.ServerTLS(
            certificatePath: chain.file,
            keyPath: key.file,
            certificateChain: chain.certificates,
            privateKey: key.key
        )
        do {
            _ = try tls.makeContext()
        } catch {
            reader.report(
                "\(path).key",
                node["key"],
                "\(key.file) does not match the certificate in \(chain.file) (\(error))"
            )
            return
        }
        config.server.tls = tls
    }
}

extension UpstreamConfigReader {
    /// `upstreams.<name>.tls: { ca, cert, key, server_name, verify }`, PEM files read now.
    func readTLS(_ node: Node, at path: String, into upstream: inout UpstreamConfig, _ reader: inout ConfigReader) {
        var tls = UpstreamConfig.TLS()
        var certNode: Node?
        var keyNode: Node?
        let keys: Set<String> = ["ca", "cert", "key", "server_name", "verify"]
        for (field, value) in reader.mapping(node, at: path, allowed: keys) ?? [] {
            let fieldPath = "\(path).\(field)"
            switch field {
            case "ca":
                guard let read = reader.certificates(value, at: fieldPath) else { continue }
                tls.caPath = read.file
                tls.trustRoots = read.certificates
            case "cert":
                certNode = value
                guard let read = reader.certificates(value, at: fieldPath) else { continue }
                tls.certificatePath = read.file
                tls.certificateChain = read.certificates
            case "key":
                keyNode = value
                guard let read = reader.privateKey(value, at: fieldPath) else { continue }
                tls.keyPath = read.file
                tls.privateKey = read.key
            case "server_name":
                guard let name = reader.string(value, at: fieldPath) else { continue }
                if Self.isHostName(name) {
                    tls.serverName = name.lowercased()
                } else {
                    reader.report(
                        fieldPath,
                        value,
                        "must be a DNS name such as api.pay.example (not an address, no port) (got '\(name)')"
                    )
                }
            case "verify":
                if let verify = reader.bool(value, at: fieldPath) { tls.verify = verify }
            default: break
            }
        }
        guard node.mapping != nil else { return }
        switch (certNode, keyNode) {
        case (.some, nil):
            reader.report(
                "\(path).key",
                node,
                "is required with tls.cert: the PEM file of the client certificate's key"
            )
            return
        case (nil, .some):
            reader.report("\(path).cert", node, "is required with tls.key: the PEM file of the client certificate")
            return
        default: break
        }
        if certNode != nil, tls.certificateChain.isEmpty || tls.privateKey == nil { return }
        if let key = tls.privateKey {
            do {
                var configuration = TLSConfiguration.makeClientConfiguration()
                configuration.certificateChain = tls.certificateChain.map { .certificate($0) }
                configuration.privateKey = .privateKey(key)
                _ = try NIOSSLContext(configuration: configuration)
            } catch {
                reader.report(
                    "\(path).key",
                    keyNode,
                    "\(tls.keyPath ?? "") does not match the certificate in \(tls.certificatePath ?? "") (\(error))"
                )
                return
            }
        }
        upstream.tls = tls
    }

    /// Every `http://` endpoint of an upstream with `tls`: TLS options apply to `https` only.
    func checkTLSEndpoints(_ upstream: UpstreamConfig, root node: Node, _ reader: inout ConfigReader) {
        guard upstream.tls != nil else { return }
        for (index, endpoint) in upstream.endpoints.enumerated() where endpoint.scheme != "https" {
            reader.report(
                "\(path).endpoints[\(index)]",
                node["endpoints"]?[index],
                "is \(endpoint.scheme):// but tls is set: TLS options apply to https:// endpoints only"
            )
        }
    }

    /// A DNS name: dot-separated labels of letters, digits and '-', not an IP address.
    static func isHostName(_ text: String) -> Bool {
        guard (1...253).contains(text.count), !text.allSatisfy({ $0.isNumber || $0 == "." }) else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count) && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}

extension ConfigReader {
    /// The certificates in the PEM file named at `path` (a chain: leaf first), with the file's
    /// name; nil after reporting why none could be read.
    mutating func certificates(_ node: Node, at path: String) -> (file: String, certificates: [NIOSSLCertificate])? {
        guard let (file, bytes) = pemFile(node, at: path) else { return nil }
        let certificates = (try? NIOSSLCertificate.fromPEMBytes(bytes)) ?? []
        guard !certificates.isEmpty else {
            let holdsKey = String(decoding: bytes, as: UTF8.self).contains("PRIVATE KEY-----")
            report(
                path,
                node,
                "\(file) holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                    + (holdsKey ? "; it holds a private key: is it the key file?" : "")
            )
            return nil
        }
        return (file, certificates)
    }

    /// The private key in the PEM file named at `path`, with the file's name; nil after
    /// reporting why it could not be read.
    mutating func privateKey(_ node: Node, at path: String) -> (file: String, key: NIOSSLPrivateKey)? {
        guard let (file, bytes) = pemFile(node, at: path) else { return nil }
        do {
            return (file, try NIOSSLPrivateKey(bytes: bytes, format: .pem))
        } catch {
            let text = String(decoding: bytes, as: UTF8.self)
            let why =
                text.contains("ENCRYPTED")
                ? "the key is encrypted: Belay needs it unencrypted (protect the file's permissions instead)"
                : text.contains("BEGIN CERTIFICATE")
                    ? "it holds a certificate: is it the certificate file?"
                    : "expected -----BEGIN PRIVATE KEY----- (or EC / RSA PRIVATE KEY)"
            report(path, node, "\(file) holds no PEM private key Belay can use: \(why)")
            return nil
        }
    }

    /// The bytes of the file named at `path`; nil after reporting that it is missing, a
    /// directory or unreadable.
    private mutating func pemFile(_ node: Node, at path: String) -> (String, [UInt8])? {
        guard let file = string(node, at: path) else { return nil }
        guard !file.isEmpty else {
            report(path, node, "must name a PEM file")
            return nil
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            report(path, node, "no file at \(file) (a relative path is read from the working directory)")
            return nil
        }
        guard !isDirectory.boolValue else {
            report(path, node, "\(file) is a directory, not a PEM file")
            return nil
        }
        guard FileManager.default.isReadableFile(atPath: file), let data = FileManager.default.contents(atPath: file)
        else {
            report(path, node, "cannot read \(file): check its permissions and owner")
            return nil
        }
        return (file, Array(data))
    }
}
