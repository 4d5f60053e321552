// swift-tools-version: 6.1

import PackageDescription

/// One settings array shared by every target (as Hummingbird does).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "belay",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Belay", targets: ["Belay"]),
        .library(name: "BelayTestKit", targets: ["BelayTestKit"]),
        .library(name: "BelayHTTP", targets: ["BelayHTTP"]),
        .library(name: "BelayStore", targets: ["BelayStore"]),
        .library(name: "BelayAPI", targets: ["BelayAPI"]),
        .library(name: "BelayGateway", targets: ["BelayGateway"]),
        .library(name: "BelayTestUpstream", targets: ["BelayTestUpstream"]),
        .executable(name: "belay", targets: ["belay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Tests only: the certificate authority TLSTests makes.
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // OTLP export of traces; only the HTTP exporter (the gRPC one costs minutes of build time).
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // Layer 1: the resilience library. No networking.
        .target(
            name: "Belay",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test support users also want: a manual clock, a recording event sink.
        .target(
            name: "BelayTestKit",
            dependencies: ["Belay"],
            swiftSettings: swiftSettings
        ),
        // Layer 2: the strategies applied to HTTP.
        .target(
            name: "BelayHTTP",
            dependencies: [
                "Belay",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
            ],
            swiftSettings: swiftSettings
        ),
        // Layer 3: durable records (SQLite, PostgreSQL).
        .target(
            name: "BelayStore",
            dependencies: [
                "Belay",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The management API's answer types (Codable): the gateway encodes them, the CLI and
        // any Swift application decode them. Foundation only.
        .target(
            name: "BelayAPI",
            swiftSettings: swiftSettings
        ),
        // Layer 4: the gateway application.
        .target(
            name: "BelayGateway",
            dependencies: [
                "Belay",
                "BelayAPI",
                "BelayHTTP",
                "BelayStore",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            // The management API's OpenAPI document, compiled in: the binary serves it at
            // GET /v1/openapi.yaml and checks its routes against it at start.
            resources: [.embedInCode("Contract/openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        // The management API's client and the CLI's tables: what `belay deliveries|webhooks|
        // requests|upstreams|incidents|drill|reload` speak, over the BelayAPI types.
        .target(
            name: "BelayClient",
            dependencies: [
                "Belay",
                "BelayAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        // `belay demo`: the gateway in front of simulated upstreams, offline.
        .target(
            name: "BelayDemo",
            dependencies: [
                "Belay",
                "BelayAPI",
                "BelayClient",
                "BelayGateway",
                "BelayStore",
                "BelayTestUpstream",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A scriptable flaky upstream for tests, the demo and benchmarks.
        .target(
            name: "BelayTestUpstream",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The thin CLI.
        .executableTarget(
            name: "belay",
            dependencies: [
                "BelayAPI",
                "BelayClient",
                "BelayDemo",
                "BelayGateway",
                "BelayStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The scriptable test upstream as a process of its own, for the benchmarks
        // (scripts/bench-capacity.sh): behaviour set over HTTP (`PUT /__upstream/behavior`).
        .executableTarget(
            name: "belay-test-upstream",
            dependencies: [
                "BelayTestUpstream",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BelayTests",
            dependencies: [
                "Belay",
                "BelayTestKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BelayGatewayTests",
            dependencies: [
                "BelayGateway",
                "BelayAPI",
                "BelayClient",
                "BelayDemo",
                "Belay",
                "BelayStore",
                "BelayTestKit",
                "BelayTestUpstream",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            // Read by AlertRoutingTests from the source tree.
            exclude: ["Schemas"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BelayStoreTests",
            dependencies: [
                "BelayStore",
                "BelayTestKit",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BelayHTTPTests",
            dependencies: [
                "BelayHTTP",
                "BelayTestKit",
                "BelayTestUpstream",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
