@testable import HTTPServer
import Reactor
import Testing

extension Loopback {
    @Suite struct BodyBufferTests {
        /// A publication's body, arriving read by read, grows in the one buffer reserved from its
        /// Content-Length: no read copies what came before (a copy-on-write per read made a 1 MiB
        /// body cost ~16 MiB of copying and was most of what issue 19's attack 3 cost a turn).
        @Test func bodyGrowsInPlace() throws {
            try expectNoFDLeak {
                let harness = try ServerHarness()
                let server = harness.server.http!
                let chunk = 32 << 10
                let chunks = 16
                let client = try harness.open(
                    "POST /publish?topic=big HTTP/1.1\r\nHost: t\r\nContent-Length: \(chunk * chunks)\r\n\r\n")
                #expect(drive(harness.loop) { server.partials.values.first?.pending != nil })
                var addresses: Set<UInt> = []
                for index in 1...chunks {
                    client.write([UInt8](repeating: 0x61, count: chunk))
                    if index == chunks { break }
                    #expect(drive(harness.loop) { server.partials.values.first?.pending?.body.count == index * chunk })
                    if let body = server.partials.values.first?.pending?.body {
                        body.withUnsafeBufferPointer { _ = addresses.insert(UInt(bitPattern: $0.baseAddress)) }
                    }
                }
                #expect(addresses.count == 1, "the body moved \(addresses.count - 1) times")
                let clients = harness.clients
                #expect(drive(harness.loop) { clients.peer(client).responses.count == 1 })
                #expect(clients.peer(client).responses.first?.status == 204)
                harness.shutDown()
            }
        }
    }
}
