@_spi(Fuzzing) import BelayGateway
import BelayHTTP
import Foundation
import HTTPTypes
import Testing

/// The fuzz targets' seed corpora (Fuzz/Corpus/<target>/) replayed through the same parsers in
/// the ordinary test run, and every input a fuzzer found a failure with, inlined. A crash the
/// fuzzer finds becomes a test here (docs/testing.md, "Fuzzing Belay's parsers").
@Suite struct FuzzRegressionTests {
    /// The seeds of one fuzz target, by file name.
    static func corpus(_ target: String) throws -> [(name: String, bytes: Data)] {
        let folder = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/Corpus/\(target)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        return try names.map { ($0, try Data(contentsOf: folder.appendingPathComponent($0))) }
    }

    static func text(_ bytes: Data) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func everyConfigSeedLoadsOrNamesWhereItIsWrong() throws {
        let loader = ConfigLoader(environment: ["TOKEN": "t0ken", "EMPTY": "", "NUMBER": "1e300"])
        var outcomes: [String: [String]] = [:]
        for seed in try Self.corpus("FuzzConfig") {
            do {
                let config = try loader.load(yaml: Self.text(seed.bytes))
                _ = try ConsumerAuth(consumers: config.consumers)
                outcomes[seed.name] = []
            } catch let error as ConfigError {
                #expect(!error.issues.isEmpty && error.issues.allSatisfy { !$0.message.isEmpty }, "\(seed.name)")
                outcomes[seed.name] = error.issues.map(\.path)
            }
        }
        #expect(outcomes["design-example.yaml"] == [])
        #expect(outcomes["webhooks.yaml"] == [])
        #expect(outcomes["extremes.yaml"] == [])
        #expect(outcomes["attempt-alone.yaml"] == [])
        #expect(outcomes["huge-rps.yaml"] == ["upstreams.pay.rate_limit.rps"])
        #expect(outcomes["loopback-name.yaml"] == ["server.listen"])
        #expect(
            outcomes["out-of-range.yaml"] == ["deliveries.schedule[1]", "deliveries.notify_after", "server.max_body"]
        )
    }

    @Test func everyProxyPathSeedSplitsIntoOneSegmentAndAPath() throws {
        var accepted: [String] = []
        for seed in try Self.corpus("FuzzProxyPath") {
            // As the fuzz target does: the seed as given, then below /proxy/.
            for (index, path) in ["", "/proxy/"].map({ $0 + Self.text(seed.bytes) }).enumerated() {
                guard case .success(let split) = ProxyPath.split(path) else { continue }
                #expect(split.path.utf8.first == UInt8(ascii: "/"), "\(seed.name)")
                #expect(!split.upstream.isEmpty && !split.upstream.utf8.contains(UInt8(ascii: "/")), "\(seed.name)")
                if index == 0 { accepted.append(seed.name) }
            }
        }
        // The others are refused: encoded separators, dot segments, bad escapes, no upstream.
        #expect(accepted == ["plain"])
    }

    @Test func everyRateLimitSeedReadsWithinItsBounds() throws {
        for seed in try Self.corpus("FuzzRateLimitHeaders") {
            let lines = Self.text(seed.bytes).split(separator: "\n", omittingEmptySubsequences: false)
            if let delay = RetryAfter.parse(lines.first ?? "", now: 1_700_000_000) { #expect(delay >= .zero) }
            var fields = HTTPFields()
            for line in lines {
                guard let colon = line.firstIndex(of: ":"), let name = HTTPField.Name(String(line[..<colon])) else {
                    continue
                }
                fields.append(HTTPField(name: name, value: String(line[line.index(after: colon)...])))
            }
            let read = RateLimitHeaders(fields)
            #expect(read.limit.map { $0 >= 0 } ?? true && read.remaining.map { $0 >= 0 } ?? true)
        }
    }

    @Test func everyJSONPointerSeedEvaluates() throws {
        var outcomes: [String: String] = [:]
        for seed in try Self.corpus("FuzzJSONPointer") {
            let newline = seed.bytes.firstIndex(of: UInt8(ascii: "\n")) ?? seed.bytes.endIndex
            let pointer = Self.text(seed.bytes[..<newline])
            let body = seed.bytes[min(newline + 1, seed.bytes.endIndex)...]
            outcomes[seed.name] = JSONPointerFuzzing.evaluate(pointer, in: Data(body))
        }
        #expect(
            outcomes == [
                "member": "string", "index": "string", "escapes": "integer", "bad": "not JSON",
                "empty-pointer": "string",
            ]
        )
    }

    // MARK: inputs the fuzzers found failures with

    /// FuzzProxyPath, input `2IIvLy8=` (`/proxy/` + U+0602 `///`): U+0602 is a "prepend"
    /// character, so it and the `/` after it are one `Character`; split by `Character`, the
    /// upstream name held a `/` and a segment could hide one, so `/\u{602}/../` was not seen
    /// as a dot segment and could climb out of the upstream's base path.
    @Test func aSlashJoinedToThePreviousCharacterStillSeparatesSegments() throws {
        let found = try #require(Data(base64Encoded: "2IIvLy8="))
        let split = try ProxyPath.split("/proxy/" + Self.text(found)).get()
        #expect(split.upstream == "\u{602}")
        #expect(split.path == "///")
        for escape in ["/proxy/pay/\u{602}/../admin", "/proxy/pay/a\u{602}/%2e%2e/admin", "/proxy/\u{602}/../admin"] {
            guard case .failure(let rejection) = ProxyPath.split(escape) else {
                Issue.record("\(escape) was accepted")
                continue
            }
            #expect(rejection == .dotSegment)
        }
        #expect(try ProxyPath.split("/proxy/pay/\u{602}/x").get().path == "/\u{602}/x")
    }
}
