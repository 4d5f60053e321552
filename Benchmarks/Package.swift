// swift-tools-version: 6.1
import PackageDescription

// Micro-benchmarks of Belay's success paths (package-benchmark, ordo-one/benchmark).
// A separate package so the library itself never depends on the benchmark tooling.
// Run from this directory:     swift package benchmark
// or from the repository root: swift package --package-path Benchmarks benchmark
let package = Package(
    name: "Benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // `name:` pins the package identity to "Belay" whatever the checkout directory is called.
        .package(name: "Belay", path: ".."),
        // Only the malloc interposer: the default `RuntimeInterposer` trait pulls a package the
        // offline mirror does not have (and ARC metrics are not used here).
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ResilienceBenchmarks",
            dependencies: [
                .product(name: "Belay", package: "Belay"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ResilienceBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
