import ArgumentParser
import RillServer

@main
struct Rill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rill",
        abstract: "A small, fast event-loop networking stack for Linux.",
        version: RillVersion.current,
        subcommands: [Serve.self, Load.self, Echo.self]
    )
}
