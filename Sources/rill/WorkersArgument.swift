import ArgumentParser

/// `auto` or a number of worker processes.
enum WorkersArgument: ExpressibleByArgument, CustomStringConvertible, Sendable {
    case auto
    case count(Int)

    public init?(argument: String) {
        if argument == "auto" {
            self = .auto
            return
        }
        guard let count = Int(argument), count >= 1 else { return nil }
        self = .count(count)
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .count(let count): return String(count)
        }
    }
}
