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
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
        .library(name: "RillServer", targets: ["RillServer"]),
        .library(name: "Workers", targets: ["Workers"]),
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .library(name: "LoadTest", targets: ["LoadTest"]),
        .executable(name: "rill", targets: ["rill"]),
    ],
    traits: [
        // The `rill` CLI and the LoadTest engine need swift-argument-parser and hdrhistogram-swift.
        // A package that uses only the libraries depends on Rill with `traits: []` and resolves
        // neither (SwiftPM skips dependencies whose every use is behind a disabled trait).
        .trait(name: "Tools", description: "The rill command and the LoadTest engine (their package dependencies)"),
        .default(enabledTraits: ["Tools"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // Latency histograms for `rill load`.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // `rill load --scenario FILE.yaml`.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
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
        // Copies of the executable over socket pairs: spawn, framed messages, supervision. libc + Reactor.
        .target(name: "Workers", dependencies: ["Reactor"]),
        // A Redis client on the reactor: RESP2, pipelining, reconnection. libc + Reactor.
        .target(name: "RedisClient", dependencies: ["Reactor"]),
        // The embeddable HTTP/1.1 server: routes, requests, responses, SSE event streams. No Foundation.
        .target(name: "HTTPServer", dependencies: ["Reactor", "HTTP1", "SSE", "SSEHub", "RillBytes"]),
        // `rill serve`: HTTP routes, the demo page, publishing and metrics over the hub. No Foundation.
        .target(name: "RillServer", dependencies: ["Reactor", "HTTP1", "SSE", "SSEHub", "HTTPServer", "Workers", "RedisClient"]),
        // The load generator's engine (`rill load`): pacing, SSE and HTTP clients, recorders, workers,
        // reports. Foundation (JSON) and hdrhistogram-swift are fine here.
        .target(
            name: "LoadTest",
            dependencies: [
                "Reactor", "HTTP1", "SSE", "Workers",
                .product(name: "Histogram", package: "hdrhistogram-swift", condition: .when(traits: ["Tools"])),
                .product(name: "Yams", package: "Yams", condition: .when(traits: ["Tools"])),
            ]
        ),
        .executableTarget(
            name: "rill",
            dependencies: [
                "Reactor",
                "RillServer",
                "HTTP1",
                "SSE",
                "SSEHub",
                "Workers",
                "RedisClient",
                "LoadTest",
                .product(name: "ArgumentParser", package: "swift-argument-parser", condition: .when(traits: ["Tools"])),
            ]
        ),
        // Examples/: small programs on the libraries alone (README, "Embedding"); CI runs them briefly.
        .executableTarget(name: "EchoServer", dependencies: ["Reactor"], path: "Examples/EchoServer"),
        .executableTarget(
            name: "SSEService", dependencies: ["HTTPServer", "Reactor", "SSE", "SSEHub"], path: "Examples/SSEService"),
        .executableTarget(name: "SSEClient", dependencies: ["Reactor", "HTTP1", "SSE"], path: "Examples/SSEClient"),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "CEpoll"]),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1"]),
        .testTarget(name: "SSETests", dependencies: ["SSE", "SSEHub", "Reactor"]),
        .testTarget(name: "RillServerTests", dependencies: ["RillServer", "HTTP1"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "HTTP1"]),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient"]),
        .testTarget(name: "WorkersTests", dependencies: ["Workers", "Reactor"]),
        .testTarget(name: "LoadTestTests", dependencies: ["LoadTest", "Reactor"]),
        // Real loopback sockets; some tests start the `rill` binary and the examples as child processes.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Reactor", "CEpoll", "RedisClient", "HTTP1", "SSE", "SSEHub", "HTTPServer", "RillServer", "Workers", "rill",
                "EchoServer", "SSEService", "SSEClient",
            ]),
    ],
    swiftLanguageModes: [.v6]
)
