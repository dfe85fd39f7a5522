import ArgumentParser

/// `faultline bench …`: timed workloads, side by side with the raw library call and, through
/// `Benchmarks/peers/run_peers.py --external`, with the Python peers.
public struct BenchCommand: ParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Developer benchmarks: time Faultline's kernels (medians of repeated runs after a warm-up).",
        discussion: """
            A developer tool, not part of the failure analysis. Most subcommands read the standard workloads \
            W1–W6 (Benchmarks/WORKLOADS.md) from a folder written by `python3 Benchmarks/peers/make_data.py DATA`. \
            Every benchmark prints the backend, OpenBLAS core type and thread counts first. With --flrow it \
            also prints FLROW lines, which `Benchmarks/peers/run_peers.py DATA --external 'faultline bench … --data {data} --flrow'` \
            merges into the peers' table so ratios come from one run; scripts/compare does both for every workload.
            """,
        subcommands: [GEMMBenchmark.self, ScalingBenchmark.self, NNBenchmark.self, GraphBenchmark.self, PGDBenchmark.self, SmoothingBenchmark.self, MahalanobisBenchmark.self, MMDBenchmark.self, EnsembleBenchmark.self, CalibrationBenchmark.self, IOBenchmark.self,
                      ConformalRegressionBenchmark.self]
    )
}

/// Options every benchmark shares.
struct BenchOptions: ParsableArguments {
    @Option(help: "Timed repetitions after one warm-up (the median is reported).")
    var reps = 7

    @Flag(help: "Print one JSON document instead of a table.")
    var json = false

    @Flag(help: "Also print FLROW lines for Benchmarks/peers/run_peers.py --external.")
    var flrow = false

    @Option(help: "Folder written by Benchmarks/peers/make_data.py; the standard workload inputs are read from it.")
    var data: String?

    func validate() throws {
        guard reps >= 1 else { throw ValidationError("--reps must be at least 1") }
    }
}
