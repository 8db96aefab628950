import Reactor

/// What a `rill load` run is asked to do: the target, the mode, how many connections at what pace,
/// publishing, and how the work is spread over processes and source addresses.
public struct LoadPlan {
    public enum Mode: String, CaseIterable, Sendable { case sse, http }

    public var target: TargetURL
    public var mode: Mode
    /// Connections to open and hold (find-max: the ceiling); nil: 100, or with find-max what the
    /// workers' open-file limits allow.
    public var connections: Int?
    /// New connections per second while ramping up (0: as fast as possible).
    public var rate = CountArgument(0)
    /// How long to hold the connections (sse) or send requests (http) once all are open.
    public var duration = DurationArgument(seconds: 10)
    /// sse: events per second to POST during the hold (0: none); a count to stop after (0: none).
    public var publishRate = 0.0
    public var publishCount = CountArgument(0)
    public var publishAfter = DurationArgument(seconds: 0)
    public var payloadBytes = CountArgument(32)
    public var publishPath = "/publish"
    /// sse: the server's heartbeat interval; a stream silent for two is a failure (0: do not check).
    public var heartbeatInterval = 0.0
    /// sse: a stream that ends or fails after opening reconnects like `EventSource` (after the
    /// server's `retry:`, 3 s by default, plus jitter, sending `Last-Event-ID`); false: it stays
    /// ended and that is an error.
    public var reconnect = true
    /// http: requests per second in total, open loop (0: closed loop).
    public var requestRate = 0.0
    public var method = "GET"
    public var body: String?
    /// Source addresses to spread connections over; nil: 127.0.0.2 upwards for loopback targets.
    public var sources: SourceRange?
    /// Worker processes; nil: as many as the open-file limit makes necessary.
    public var workers: Int?
    /// sse: SO_RCVBUF of each stream, set as it connects (nil: the kernel's autotuning).
    public var receiveBufferBytes: Int?
    /// Open files per process (nil: the hard limit).
    public var fdLimit: Int?
    /// sse: step up by `step` streams until the first failure.
    public var findMax = false
    public var step = CountArgument(1_000)
    /// Stages and mixed groups (`--stage`, `--scenario`): the run follows them instead of
    /// `connections`, `rate` and `duration`.
    public var scenario: LoadScenario?
    /// sse: streams closed and reopened per second while the total is held (`--churn`).
    public var churn = 0.0
    /// Pass/fail criteria (`--threshold`): with any, they alone decide the exit status.
    public var thresholds: [Threshold] = []
    /// Stop as soon as a threshold can no longer hold.
    public var abortOnFail = false
    /// Where to serve live Prometheus counters while running (`--metrics-port`), or nil.
    public var metricsAddress: SocketAddress?

    /// A plan for `target`; without a mode, sse for paths starting with /sse, else http.
    public init(target: TargetURL, mode: Mode? = nil) {
        self.target = target
        self.mode = mode ?? (target.target.hasPrefix("/sse") ? .sse : .http)
    }

    /// `connections`, or its default.
    public var connectionCount: Int { connections ?? 100 }

    /// The HTTP mode's request, the same bytes every time.
    public var httpRequest: [UInt8] {
        var head = "\(method) \(target.target) HTTP/1.1\r\nHost: \(target.hostHeader)\r\n"
        if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
        return Array((head + "\r\n" + (body ?? "")).utf8)
    }
}
