import ArgumentParser

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
            """,
        subcommands: [DemoCommand.self, TrainCommand.self, AttackCommand.self, CorruptCommand.self, CertifyCommand.self, ReportCommand.self, CalibrateCommand.self, UncertaintyCommand.self, ShiftCommand.self, DriftCommand.self, ConformalCommand.self, BoundsCommand.self, InspectCommand.self, InfoCommand.self, BenchCommand.self]
    )
}
