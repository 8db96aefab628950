// swift-tools-version: 6.1
// Rill's benchmarks: their own package, so the main build never resolves package-benchmark.
// Run: cd Benchmarks && swift package benchmark
import PackageDescription

/// The root package's identity is the name of the folder it was cloned into.
let rill = String(#filePath.split(separator: "/").dropLast(2).last!).lowercased()

let package = Package(
    name: "RillBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(path: "../"),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // The side-by-side peer.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // The keep-alive HTTP benchmark's framework peer (Scripts/bench-http.sh).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .executableTarget(
            name: "ReactorBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "Reactor", package: rill),
            ],
            path: "Benchmarks/ReactorBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "HubBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "Reactor", package: rill),
                .product(name: "SSEHub", package: rill),
            ],
            path: "Benchmarks/HubBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        // End to end, out of process: one event from `rill serve` to N subscribers held here.
        .executableTarget(
            name: "FanOut",
            dependencies: [
                .product(name: "Reactor", package: rill),
                .product(name: "SSEHub", package: rill),
            ],
            path: "FanOut"
        ),
        // The connection benchmark's peers (Scripts/bench-connections.sh): SwiftNIO serving the same
        // bench contract as `rill serve`, and the floor — one write() per socket, nothing else.
        .executableTarget(
            name: "NIOSSE",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "NIOSSE"
        ),
        .executableTarget(name: "FloorSSE", path: "FloorSSE"),
        // The echo benchmark (Scripts/bench-echo.sh): callback, async and NIOAsyncChannel echo servers,
        // and one C client for all three.
        .executableTarget(
            name: "EchoServer",
            dependencies: [
                .product(name: "Reactor", package: rill),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "EchoServer"
        ),
        .executableTarget(name: "EchoClient", path: "EchoClient"),
        // The keep-alive HTTP benchmark's peers (Scripts/bench-http.sh): the same fixed bytes from
        // Hummingbird 2 and from a plain NIOHTTP1 pipeline, one event loop each.
        .executableTarget(
            name: "HTTPPeerHummingbird",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "HTTPPeerHummingbird"
        ),
        .executableTarget(
            name: "HTTPPeerNIO",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "HTTPPeerNIO"
        ),
        .executableTarget(
            name: "ParserBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "HTTP1", package: rill),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/ParserBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ]
)
