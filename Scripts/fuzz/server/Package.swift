// swift-tools-version: 6.1
// The whole-server fuzz target: libFuzzer drives `SSEServer` on a manual-clock `EventLoop` through
// real loopback sockets. Built and run by Scripts/fuzz-server.sh, which adds `-sanitize=fuzzer` to
// every Swift module (coverage of the server guides the fuzzer) and AddressSanitizer.
import PackageDescription

/// The root package's identity is the name of the folder it was cloned into.
let rill = String(#filePath.split(separator: "/").dropLast(4).last!).lowercased()

let package = Package(
    name: "ServerFuzz",
    dependencies: [
        // No traits: the libraries only, so swift-argument-parser and hdrhistogram are not resolved.
        .package(path: "../../..", traits: [])
    ],
    targets: [
        .executableTarget(
            name: "ServerFuzz",
            dependencies: [
                .product(name: "Reactor", package: rill),
                .product(name: "SSEHub", package: rill),
                .product(name: "RillServer", package: rill),
            ],
            // libFuzzer brings `main`; the target only defines LLVMFuzzerTestOneInput.
            swiftSettings: [.unsafeFlags(["-sanitize=fuzzer", "-parse-as-library"])],
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer"])]
        )
    ],
    swiftLanguageModes: [.v6]
)
