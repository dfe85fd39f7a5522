import ArgumentParser
import FaultlineInputs
import FaultlineBench
import Foundation

public struct FaultlineCommand: ParsableCommand {
    public init() {}

    /// The release this build belongs to (`faultline --version`).
    public static let version = "0.2.0"

    public static let configuration = CommandConfiguration(
        commandName: "faultline",
        abstract: "Find out why a machine-learning model fails: reliability and robustness measurements.",
        discussion: """
            Faultline runs on the CPU. Its linear algebra uses OpenBLAS/LAPACKE when they load (the core \
            type is chosen from cpuid unless OPENBLAS_CORETYPE is set) and pure-Swift SIMD code otherwise.

            Environment: FAULTLINE_BACKEND=blas|simd|reference, FAULTLINE_BLAS=<path to a BLAS library>, \
            FAULTLINE_LAPACKE=<path>, FAULTLINE_THREADS=<n>, FAULTLINE_CORETYPE=<OpenBLAS core name|auto>, \
            FAULTLINE_MPI=<path to Open MPI's libmpi.so|none>.
            Under Open MPI's mpirun, predict, calibrate, conformal, uncertainty, shift fit and certify run on every rank \
            (each on its own rows); other commands run on rank 0 (docs/SCALING.md).
            Exit codes: 0 ok, 1 a check failed (per command), 2 bad input (including bad options).
            """,
        version: version,
        subcommands: [DemoCommand.self, TrainCommand.self, AttackCommand.self, CorruptCommand.self, CertifyCommand.self, ReportCommand.self, PredictCommand.self, DataCommand.self,
                      CalibrateCommand.self, UncertaintyCommand.self, SelectiveCommand.self, ShiftCommand.self, DriftCommand.self, ConformalCommand.self, BoundsCommand.self,
                      SlicesCommand.self, LabelShiftCommand.self, RegressCommand.self,
                      InspectCommand.self, InfoCommand.self, BenchCommand.self]
    )

    /// ArgumentParser's entry point, except that usage errors (unknown options, missing or malformed
    /// values: ArgumentParser's EX_USAGE, 64) exit with 2 like every other bad input, as the README
    /// promises. `--help` and `--version` still exit 0, and a command's own `ExitCode` passes through.
    ///
    /// A typed input error that a command lets escape (e.g. a benchmark's unreadable `--file`) also
    /// ends with one line naming the command and exit 2, instead of ArgumentParser's exit 1.
    public static func main() {
        // The status is decided in a function whose strings are all released when it returns, so that
        // exiting leaves nothing allocated behind (LeakSanitizer runs of the CLI tests stay clean).
        if let status = runAndReport() { Foundation.exit(status) }
    }

    /// Parses and runs the command; on an error prints its message and returns the exit status
    /// (2 for usage and input errors), nil on success.
    static func runAndReport() -> Int32? {
        let usageError = ExitCode(64)  // EX_USAGE
        var name = configuration.commandName ?? "faultline"
        do {
            try Job.join()  // joins the MPI job when mpirun launched this process; else one process, libmpi never loaded
            var command = try parseAsRoot()
            name = type(of: command).configuration.commandName.map { "faultline \($0)" } ?? name
            if Job.world.size > 1 {
                // Commands not written for several ranks run once, on rank 0; the other ranks end here.
                if command is DistributedCommand { Job.distributed = true } else if Job.quiet { return nil }
            }
            try command.run()
            return nil
        } catch {
            let code = exitCode(for: error)
            if Job.distributed && !(error is ExitCode) {
                // Several ranks: agreed failures end every rank together; any other error is this rank's alone
                // and aborts the job (the other ranks may be waiting in a collective).
                return Job.fail(Inputs.inputErrorMessage(error) ?? fullMessage(for: error), error: error, command: name, code: code == .failure ? 2 : code.rawValue)
            }
            if code == usageError {
                if jsonRequested {
                    reportError(message(for: error), command: name, exitCode: 2)
                } else {
                    printError(fullMessage(for: error))
                }
                return 2
            }
            if code == .failure, let message = Inputs.inputErrorMessage(error) {
                reportError(message, command: name, exitCode: 2)
                return 2
            }
            if code == .success, !fullMessage(for: error).isEmpty {
                if !Job.quiet { print(fullMessage(for: error)) }  // --help, --version (once under mpirun)
                return 0
            }
            let message = fullMessage(for: error)
            if !message.isEmpty { printError(message) }
            return code.rawValue
        }
    }
}
