import Reactor
import Workers
#if canImport(Glibc)
import Glibc
#endif

/// Why a run cannot start as planned.
public enum LoadError: Error, Equatable, CustomStringConvertible {
    /// `--workers N` leaves more connections per process than its open-file limit allows.
    case tooManyPerProcess(
        connections: Int, processes: Int, each: Int, softLimit: UInt64, hardLimit: UInt64, needed: Int)
    /// More connections per source address than the ephemeral port range has.
    case ephemeralPortsShort(connections: Int, sources: Int, perSource: Int, ports: Int)
    /// The connections need more memory than MemAvailable (kernel and generator, per connection).
    case notEnoughMemory(connections: Int, loopback: Bool, perConnection: Int, available: Int, fits: Int)
    /// The connections need more open files than the system has left (fs.file-max).
    case systemFileLimit(connections: Int, loopback: Bool, limit: Int, inUse: Int, fits: Int)
    /// More source addresses than a range may hold.
    case tooManySourceAddresses(connections: Int, addresses: Int)

    public var description: String {
        switch self {
        case .tooManyPerProcess(let connections, let processes, let each, let soft, let hard, let needed):
            return "\(connections) connections over \(processes) processes is \(each) each, but a process may open "
                + "\(soft) files (hard limit \(hard), \(LoadSession.reservedFiles) kept back): "
                + "use --workers auto, or at least --workers \(needed)"
        case .ephemeralPortsShort(let connections, let sources, let perSource, let ports):
            return "\(connections) connections from \(sources) source address(es) need \(perSource) ports "
                + "each, but the ephemeral range (net.ipv4.ip_local_port_range) has \(ports): "
                + "spread them with --source 127.0.0.2-127.0.0.\(2 + connections / (ports / 2))"
        case .notEnoughMemory(let connections, let loopback, let each, let available, let fits):
            let kernel = loopback ? MachineCapacity.kernelBytesPerLoopbackPair : MachineCapacity.kernelBytesPerRemoteEnd
            return "\(connections) connections need about \(gigabytes(connections &* each)) of memory here "
                + "(\(kernel / 1000) KB of kernel memory per connection"
                + (loopback ? ", both ends of a loopback connection being on this machine," : "")
                + " + \(MachineCapacity.generatorBytesPerStream) B in the load generator, × \(connections)), "
                + "but MemAvailable is \(gigabytes(available)): at most \(fits) fit; lower -c"
                + (loopback ? ", or run rill load on another machine than the server" : "")
        case .systemFileLimit(let connections, let loopback, let limit, let inUse, let fits):
            return
                "\(connections) connections need \(loopback ? "\(2 * connections) open files (both ends on this machine)" : "\(connections) open files"), "
                + "but the system allows \(limit) (fs.file-max) and \(inUse) are open: at most \(fits) fit; "
                + "lower -c, or raise fs.file-max (sysctl -w fs.file-max=N)"
        case .tooManySourceAddresses(let connections, let addresses):
            return "\(connections) connections would need \(addresses) source addresses (20,000 each), more than one "
                + "range holds (65,536): lower -c"
        }
    }
}

/// A whole `rill load` run: decides the processes and source addresses, starts the workers, runs
/// the coordinator and returns the report. Also the worker process's side.
public enum LoadSession {
    /// Open files each process keeps for itself: stdio, epoll, eventfd, the publisher, channels.
    public static let reservedFiles = 32

    /// Applies the plan's open-file limit; connections one process may hold.
    static func perProcess(_ plan: LoadPlan) -> (count: Int, soft: UInt64, hard: UInt64) {
        let limits =
            plan.fdLimit.map { ResourceLimits.setOpenFilesSoftLimit(UInt64($0)) }
            ?? ResourceLimits.raiseOpenFilesToHardLimit()
        return (Int(limits.soft) - reservedFiles, limits.soft, limits.hard)
    }

    /// The plan with its defaults resolved: a find-max ceiling from the limits, and source addresses.
    static func resolved(_ plan: LoadPlan, perProcess: Int) throws(LoadError) -> (
        plan: LoadPlan, sources: [SocketAddress]
    ) {
        var plan = plan
        if plan.findMax && plan.connections == nil { plan.connections = perProcess * (plan.workers ?? 1) }
        let wanted = plan.connectionCount
        if let sources = plan.sources { return (plan, sources.addresses) }
        guard plan.target.isLoopback else { return (plan, []) }
        guard let automatic = SourceRange.automatic(connections: wanted) else {
            throw .tooManySourceAddresses(connections: wanted, addresses: wanted / SourceRange.connectionsPerAddress + 1)
        }
        return (plan, automatic.addresses)
    }

    /// How many processes the plan needs (1: this one), or why it cannot run.
    public static func processes(
        connections wanted: Int, workers: Int?, perProcess: Int, softLimit: UInt64 = 0,
        hardLimit: UInt64 = 0, sources: Int, ephemeralPorts ports: Int
    ) throws(LoadError) -> Int {
        let processes: Int
        if let count = workers {
            processes = count
            let each = (wanted + count - 1) / count
            if each > perProcess {
                throw .tooManyPerProcess(
                    connections: wanted, processes: count, each: each, softLimit: softLimit,
                    hardLimit: hardLimit, needed: (wanted + perProcess - 1) / perProcess)
            }
        } else {
            processes = (wanted + perProcess - 1) / perProcess
        }
        let perSource = (wanted + max(1, sources) - 1) / max(1, sources)
        if perSource > ports {
            throw .ephemeralPortsShort(
                connections: wanted, sources: max(1, sources), perSource: perSource, ports: ports)
        }
        return processes
    }

    /// Runs the plan as the coordinator. `workerArguments` start a worker process (this program's
    /// command line for a worker; `--connections N` is appended when find-max chose the ceiling);
    /// `progress` gets a status line a few times a second; `loop` is stopped by interrupts.
    public static func run(
        _ plan: LoadPlan, loop: EventLoop, workerArguments: [String], agents: AgentPlan? = nil,
        progress: @escaping (String) -> Void
    ) throws -> LoadReport {
        let limits = perProcess(plan)
        // With agents, this host holds one host's share; the agents check their own.
        let localConnections = agents.map { $0.localShare(of: plan.connectionCount) } ?? plan.connectionCount
        if !plan.findMax || plan.connections != nil {
            try MachineCapacity.current().check(connections: localConnections, loopback: plan.target.isLoopback)
        }
        let ceilingChosen = plan.findMax && plan.connections == nil
        // Bound before any worker starts, so a port in use is refused at once.
        let metrics = try plan.metricsAddress.map { address throws(SystemError) in
            try LoadMetricsEndpoint(loop: loop, address: address)
        }
        let (plan, sources) = try resolved(plan, perProcess: limits.count)
        let count = try processes(
            connections: localConnections, workers: plan.workers, perProcess: limits.count,
            softLimit: limits.soft, hardLimit: limits.hard, sources: sources.count,
            ephemeralPorts: LoadLimit.ephemeralPorts())
        let workers: [LoadWorker]
        var children: RemoteWorkers? = nil
        if count == 1 {
            workers = [LocalWorker(loop: loop, plan: plan, sources: sources)]
        } else {
            var arguments = workerArguments
            if ceilingChosen { arguments += ["--connections", String(plan.connectionCount)] }
            children = try RemoteWorkers(loop: loop, count: count, arguments: arguments)
            workers = children!.workers
        }
        let remote = try agents.map {
            try AgentLinks.connect(
                loop: loop, plan: $0, total: plan.connectionCount, fdLimit: plan.fdLimit, after: workers)
        }
        let run = LoadRun(loop: loop, plan: plan, sources: sources, workers: workers + (remote ?? []), progress: progress)
        // Each agent is a host; this host's processes share one host's part.
        if let remote { run.weights = workers.map { _ in 1 / Double(workers.count) } + remote.map { _ in 1 } }
        run.metricsEndpoint = metrics
        let report = run.execute()
        metrics?.close()
        for agent in remote ?? [] { agent.close() }
        children?.stop()
        return report
    }

    /// Runs a worker process: obeys the coordinator on `channel` (its fd 0) until it has the result.
    public static func runWorker(_ plan: LoadPlan, channel: Int32) throws {
        signal(SIGINT, SIG_IGN)  // the coordinator decides when to stop, and asks for the result
        let limits = perProcess(plan)
        let (plan, sources) = try resolved(plan, perProcess: limits.count)
        let loop = try EventLoop()
        let worker = LocalWorker(loop: loop, plan: plan, sources: sources)
        try WorkerAgent(loop: loop, worker: worker).run(channel: channel)
    }
}
