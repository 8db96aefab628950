import HTTPServer
import SSEHub

/// `rill serve --threads N`: one `SSEServer` per loop of an `EventLoopGroup`, each with its hub from
/// one `HubGroup`. A publication that arrives on loop `origin` is sequenced by the group, so every
/// loop's subscribers get it in one order with one id, and its request is answered on its own loop
/// once that loop's hub has queued it (`X-Subscribers` then counts that loop's subscribers only:
/// the other loops deliver on their own time). Loop-confined to loop `origin`.
public final class HubGroupSequencer: PublicationSequencer {
    let hubs: HubGroup
    let origin: Int
    unowned let server: SSEServer

    public init(hubs: HubGroup, origin: Int, server: SSEServer) {
        self.hubs = hubs
        self.origin = origin
        self.server = server
    }

    public func sequence(_ event: RelayMessage.RelayedEvent, topic: String, response: DeferredResponse) {
        server.publishedTopics.insert(topic)
        do {
            try hubs.publish(event.outgoing, topic: topic, from: origin) { [unowned server] id, subscribers in
                server.answer(response, delivered: (id: id, subscribers: subscribers))
            }
        } catch {
            server.answer(response, delivered: nil)
        }
    }
}
