import ArgumentParser
import Foundation

@main
struct FaultlineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faultline",
        abstract: "Find out why a machine-learning model fails: reliability and robustness measurements.",
        discussion: """
            Faultline runs on the CPU. Its linear algebra uses OpenBLAS/LAPACKE when they load (the core \
            type is chosen from cpuid unless OPENBLAS_CORETYPE is set) and pure-Swift SIMD code otherwise.

            Environment: FAULTLINE_BACKEND=blas|simd|reference, FAULTLINE_BLAS=<path to a BLAS library>, \
            FAULTLINE_LAPACKE=<path>, FAULTLINE_THREADS=<n>, FAULTLINE_CORETYPE=<OpenBLAS core name|auto>.
            Exit codes: 0 ok, 1 a check failed (per command), 2 bad input (including bad options).
            """,
        subcommands: [DemoCommand.self, TrainCommand.self, AttackCommand.self, CorruptCommand.self, CertifyCommand.self, ReportCommand.self, CalibrateCommand.self, UncertaintyCommand.self, ShiftCommand.self, DriftCommand.self, ConformalCommand.self, BoundsCommand.self, InspectCommand.self, InfoCommand.self, BenchCommand.self]
    )

    /// ArgumentParser's entry point, except that usage errors (unknown options, missing or malformed
    /// values: ArgumentParser's EX_USAGE, 64) exit with 2 like every other bad input, as the README
    /// promises. `--help` and `--version` still exit 0, and a command's own `ExitCode` passes through.
    ///
    /// A typed input error that a command lets escape (e.g. a benchmark's unreadable `--file`) also
    /// ends with one line naming the command and exit 2, instead of ArgumentParser's exit 1.
    static func main() {
        let usageError = ExitCode(64)  // EX_USAGE
        var name = configuration.commandName ?? "faultline"
        do {
            var command = try parseAsRoot()
            name = type(of: command).configuration.commandName.map { "faultline \($0)" } ?? name
            try command.run()
        } catch {
            if exitCode(for: error) == usageError {
                printError(fullMessage(for: error))
                Foundation.exit(2)
            }
            if exitCode(for: error) == .failure, let message = Inputs.inputErrorMessage(error) {
                printError("\(name): \(message)")
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}
