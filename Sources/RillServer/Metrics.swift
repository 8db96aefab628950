import HTTPServer
import Reactor

/// One sample of `/metrics`.
public struct MetricSample: Sendable {
    public let name: String
    public let type: String
    public let help: String
    public let labels: String
    public var value: Int
}

/// The server's, the hub's, the listener's and the loop's counters as samples, and their
/// Prometheus text exposition (format 0.0.4). Built on request: `/metrics` is scraped every few
/// seconds, not a hot path.
struct MetricsText {
    private(set) var samples: [MetricSample] = []

    mutating func add(_ name: String, _ type: String, _ help: String, _ value: Int, labels: String = "") {
        samples.append(MetricSample(name: name, type: type, help: help, labels: labels, value: value))
    }

    /// Samples of one metric come one after another: its HELP and TYPE go before the first.
    static func render(_ samples: [MetricSample]) -> String {
        var text = ""
        var lastName = ""
        for sample in samples {
            if sample.name != lastName {
                text += "# HELP \(sample.name) \(sample.help)\n# TYPE \(sample.name) \(sample.type)\n"
                lastName = sample.name
            }
            text +=
                sample.labels.isEmpty
                ? "\(sample.name) \(sample.value)\n" : "\(sample.name){\(sample.labels)} \(sample.value)\n"
        }
        return text
    }
}

extension SSEServer {
    /// The `/metrics` body: this server's samples, or, under a supervisor, the sums over all
    /// workers as of their last report (at most a second old) and how many workers there are.
    func metricsText() -> String {
        var samples = metricsSamples()
        if let relay, let totals = relay.totals, totals.values.count == samples.count {
            for index in samples.indices { samples[index].value = totals.values[index] }
            samples.append(
                MetricSample(
                    name: "rill_workers", type: "gauge", help: "Worker processes whose figures are summed here.",
                    labels: "", value: totals.workers))
        }
        // Not among the summed samples: the kernel's counters are machine-wide (every worker reads
        // the same), and so is the build.
        if let baseline = listenQueueBaseline, let grown = ListenQueueCounters.read()?.since(baseline) {
            samples.append(
                MetricSample(
                    name: "rill_listen_overflows_total", type: "counter",
                    help: "Handshakes dropped at a full accept queue since the start (TcpExt ListenOverflows, machine-wide).",
                    labels: "", value: grown.overflows))
            samples.append(
                MetricSample(
                    name: "rill_listen_drops_total", type: "counter",
                    help: "Connection attempts dropped at a listener since the start (TcpExt ListenDrops, machine-wide).",
                    labels: "", value: grown.drops))
        }
        // 1 on every worker, and 1 in the sum.
        samples.append(
            MetricSample(
                name: "rill_build_info", type: "gauge", help: "Always 1; the version is its label.",
                labels: "version=\"\(RillVersion.current)\"", value: 1))
        return MetricsText.render(samples)
    }

    /// Every sample, always in the same order (workers send the values; the supervisor sums them).
    public func metricsSamples() -> [MetricSample] {
        var metrics = MetricsText()
        let hub = hub.statistics
        metrics.add("rill_connections", "gauge", "Connections held now (streams and requests).", heldConnections)
        metrics.add("rill_subscribers", "gauge", "Event streams open now.", hub.subscribers)
        metrics.add("rill_connections_total", "counter", "Connections accepted and held.", statistics.connectionsTotal)
        metrics.add(
            "rill_connections_rejected_total", "counter",
            "Connections turned away with 503 at the connection limit.", statistics.connectionsRejected)
        metrics.add("rill_connection_limit", "gauge", "Connections the server holds at most.", maximumConnections)
        metrics.add("rill_requests_total", "counter", "Requests answered.", statistics.requests)
        metrics.add("rill_events_total", "counter", "Events published (POST /publish and the ticker).", hub.events)
        metrics.add("rill_event_writes_total", "counter", "Events queued to subscribers.", hub.eventWrites)
        metrics.add("rill_heartbeats_total", "counter", "Heartbeat comments written.", hub.heartbeats)
        metrics.add(
            "rill_stream_bytes_total", "counter", "Event and heartbeat bytes queued to subscribers.",
            hub.bytesQueuedOrWritten)
        metrics.add("rill_bytes_written_total", "counter", "Bytes written to sockets.", loop.statistics.bytesWritten)
        metrics.add("rill_bytes_read_total", "counter", "Bytes read from sockets.", loop.statistics.bytesRead)
        metrics.add(
            "rill_slow_subscribers_dropped_total", "counter",
            "Subscribers closed for queueing more than the limit.", hub.slowSubscribersDropped)
        metrics.add("rill_history_bytes", "gauge", "Event bytes kept for replay over all topics.", hub.historyBytes)
        metrics.add("rill_history_entries", "gauge", "Events kept for replay over all topics.", hub.historyEntries)
        metrics.add(
            "rill_history_evictions_total", "counter",
            "Events dropped from history to keep all topics within --history-total.", hub.historyEvictions)
        metrics.add(
            "rill_replays_in_progress", "gauge", "Reconnections whose replay is still being written.",
            self.hub.replaysInProgress)
        metrics.add(
            "rill_kernel_tcp_memory_bytes", "gauge",
            "Memory the kernel's TCP sockets hold, machine-wide (/proc/net/sockstat).",
            SystemMemory.tcpSocketBytes() ?? 0)
        metrics.add(
            "rill_loop_longest_turn_microseconds", "gauge",
            "The longest one loop turn has kept the loop busy since start: the most any client waited on it.",
            Int(loop.statistics.longestTurnNanoseconds / 1_000))
        metrics.add(
            "rill_replays_total", "counter", "Reconnections given the events after their Last-Event-ID.", hub.replays)
        metrics.add(
            "rill_replay_misses_total", "counter",
            "Reconnections whose Last-Event-ID was unknown or expired.", hub.replayMisses)
        for reason in StreamReset.Reason.allCases {
            metrics.add(
                "rill_replay_resets_total", "counter",
                "Reconnections told their Last-Event-ID cannot be resumed (event: reset), by reason.",
                counters.replayResets[reason, default: 0], labels: "reason=\"\(reason.rawValue)\"")
        }
        let redis = (engine as? RedisEngine)?.statistics
        metrics.add(
            "rill_engine_available", "gauge", "1 if publications can be stored now (always 1 for the memory engine).",
            engine.map { $0.isAvailable ? 1 : 0 } ?? 1)
        metrics.add(
            "rill_engine_publications_refused_total", "counter",
            "Publications refused with 503 because the event store (Redis) was unavailable.", redis?.refused ?? 0)
        metrics.add(
            "rill_engine_epoch_changes_total", "counter",
            "Times the event store lost its history under this node (a new epoch).", redis?.epochChanges ?? 0)
        for status in [400, 413, 414, 431, 501, 505] {
            metrics.add(
                "rill_parse_errors_total", "counter", "Malformed requests, by response status.",
                statistics.parseErrors[status, default: 0], labels: "status=\"\(status)\"")
        }
        let refusals = [
            ("404", statistics.notFound), ("405", statistics.methodNotAllowed),
            ("401", statistics.unauthorized), ("400", statistics.badRequests),
            ("503", statistics.topicsExhausted)
        ]
        for (status, count) in refusals {
            metrics.add(
                "rill_requests_refused_total", "counter", "Well-formed requests refused, by status.",
                count, labels: "status=\"\(status)\"")
        }
        metrics.add(
            "rill_partial_requests_refused_total", "counter",
            "Requests refused (503) because unfinished requests held their memory budget.",
            statistics.partialRequestsRefused)
        metrics.add(
            "rill_partial_request_bytes", "gauge", "Bytes held by requests split across reads.",
            partialRequestBytes)
        metrics.add(
            "rill_turns_yielded_total", "counter",
            "Times a pipelining connection was put off to the next loop turn (its share was used).",
            statistics.turnsYielded)
        for (kind, count) in [
            ("header", statistics.headerTimeouts), ("body", statistics.bodyTimeouts),
            ("idle", statistics.idleTimeouts),
            ("linger", statistics.lingerTimeouts)
        ] {
            metrics.add(
                "rill_timeouts_total", "counter", "Connections closed by a timeout, by kind.",
                count, labels: "kind=\"\(kind)\"")
        }
        metrics.add(
            "rill_resets_total", "counter", "Connections that ended in a reset or socket error.", statistics.resets)
        metrics.add(
            "rill_accept_errors_total", "counter", "Failed accepts (other than running out of fds).",
            http.acceptErrors)
        metrics.add(
            "rill_fd_exhaustion_pauses_total", "counter",
            "Times accepting paused because file descriptors ran out.", http.exhaustionPauses)
        metrics.add(
            "rill_listener_sheds_total", "counter",
            "Times the listener left the SO_REUSEPORT group at the connection limit (back once there is room).",
            statistics.listenerSheds)
        metrics.add("rill_static_files_total", "counter", "Files served from --static.", statistics.staticFiles)
        return metrics.samples
    }
}
