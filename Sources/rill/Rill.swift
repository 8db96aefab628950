import ArgumentParser
import RillServer
#if canImport(Glibc)
import Glibc
#endif

@main
struct Rill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rill",
        abstract: "A small, fast event-loop networking stack for Linux.",
        version: RillVersion.current,
        subcommands: [Serve.self, Load.self, Echo.self]
    )

    /// A first word that is no subcommand gets "unknown subcommand" and the nearest name, where
    /// ArgumentParser would say "Unexpected argument".
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // `rill load URL` takes a positional first, so `agent` cannot be its subcommand.
        if arguments.starts(with: ["load", "agent"]) {
            LoadAgent.main(Array(arguments.dropFirst(2)))
            Self.exit()
        }
        if let first = arguments.first, let message = unknownSubcommand(first) {
            writeStandardError("rill: \(message)\nSee 'rill --help' for the subcommands.")
            Self.exit(withError: ExitCode.validationFailure)
        }
        main(nil)
    }

    /// The message for `word` as a subcommand, or nil if it is one (or an option).
    static func unknownSubcommand(_ word: String) -> String? {
        let names = configuration.subcommands.map { $0._commandName } + ["help"]
        guard !word.hasPrefix("-"), !names.contains(word) else { return nil }
        let nearest = names.map { ($0, editDistance(word, $0)) }.min { $0.1 < $1.1 }
        let suggestion = nearest.flatMap { $0.1 <= 2 ? " (did you mean '\($0.0)'?)" : nil } ?? ""
        return "unknown subcommand '\(word)'\(suggestion)"
    }

    /// Levenshtein distance: insertions, deletions and substitutions.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...max(1, b.count) where !b.isEmpty {
                let old = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = old
            }
        }
        return row[b.count]
    }
}
