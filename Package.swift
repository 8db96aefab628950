// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Rill",
    products: [
        .library(name: "RillBytes", targets: ["RillBytes"]),
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "HTTP1", targets: ["HTTP1"]),
        .library(name: "SSE", targets: ["SSE"]),
        .library(name: "SSEHub", targets: ["SSEHub"]),
        .library(name: "RillServer", targets: ["RillServer"]),
        .executable(name: "rill", targets: ["rill"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // Latency histograms for `rill load`.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // The thin C boundary: only what Swift cannot import well (macros, packed structs, flags).
        .target(name: "CEpoll"),
        // Pure byte types shared by every layer (SharedBytes): the standard library only.
        .target(name: "RillBytes"),
        // Single-threaded epoll reactor. libc + the standard library only.
        .target(name: "Reactor", dependencies: ["CEpoll", "RillBytes"]),
        // Incremental zero-copy HTTP/1.1 parsers: the standard library only (no Reactor, no Foundation).
        .target(name: "HTTP1"),
        // Server-Sent Events framing and the client parser: pure byte transforms, no reactor.
        .target(name: "SSE", dependencies: ["RillBytes"]),
        // The Hub that fans SSE events out to connections of a reactor (topics, history, heartbeats).
        .target(name: "SSEHub", dependencies: ["Reactor", "SSE"]),
        // `rill serve`: HTTP routes, the demo page, publishing and metrics over the hub. No Foundation.
        .target(name: "RillServer", dependencies: ["Reactor", "HTTP1", "SSE", "SSEHub"]),
        .executableTarget(
            name: "rill",
            dependencies: [
                "Reactor",
                "RillServer",
                "HTTP1",
                "SSE",
                "SSEHub",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "CEpoll"]),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1"]),
        .testTarget(name: "SSETests", dependencies: ["SSE", "SSEHub", "Reactor"]),
        // Real loopback sockets; some tests start the `rill` binary as a child process.
        .testTarget(name: "IntegrationTests", dependencies: ["Reactor", "CEpoll", "HTTP1", "SSE", "SSEHub", "RillServer", "rill"]),
    ],
    swiftLanguageModes: [.v6]
)
