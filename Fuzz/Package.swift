// swift-tools-version: 5.4

// libFuzzer targets for Belay's parsers of hostile input. Built only by scripts/fuzz.sh, with
// `-sanitize=fuzzer,address`: the root package's `swift build` and `swift test` never see them.
//
// Tools version 5.4 on purpose: from 5.5 SwiftPM links an executable with `main` renamed to
// `<Target>_main` (so tests can import it), which a fuzzer, whose `main` is libFuzzer's, lacks.
import PackageDescription

/// One executable per parser; each defines `LLVMFuzzerTestOneInput` and no `main` (libFuzzer
/// supplies it), hence `-parse-as-library`.
let fuzzers: [(name: String, dependencies: [Target.Dependency])] = [
    ("FuzzConfig", [.product(name: "BelayGateway", package: "belay"), .product(name: "Belay", package: "belay")]),
    ("FuzzProxyPath", [.product(name: "BelayGateway", package: "belay")]),
    (
        "FuzzRateLimitHeaders",
        [.product(name: "BelayHTTP", package: "belay"), .product(name: "HTTPTypes", package: "swift-http-types")]
    ),
    (
        "FuzzWebhookSignatures",
        [
            .product(name: "BelayGateway", package: "belay"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]
    ),
    ("FuzzJSONPointer", [.product(name: "BelayGateway", package: "belay")]),
]

let package = Package(
    name: "BelayFuzz",
    dependencies: [
        .package(name: "belay", path: ".."),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    ],
    targets: fuzzers.map { fuzzer in
        .executableTarget(
            name: fuzzer.name,
            dependencies: fuzzer.dependencies,
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    }
)
