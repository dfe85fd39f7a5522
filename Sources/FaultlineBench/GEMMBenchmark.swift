import FaultlineReport
import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import Foundation

/// `faultline bench gemm`: the library's gemm against the raw shim call (same process, interleaved),
/// the simd backend, and OpenBLAS with its own core auto-detection (a child process, because the core
/// type is fixed when the library loads).
struct GEMMBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Time C = A·B on n×n matrices: library gemm vs raw cblas call vs simd backend vs OpenBLAS auto-detected core.",
        discussion: """
            Without --data the inputs are seeded uniform(−0.5, 0.5) matrices of --size; with --data DIR they \
            are W1's gemm_a.npy and gemm_b.npy (float32 2048×2048). GFLOP/s counts 2n³ flops. The relative \
            error is the Frobenius error of the float32 result against a float64 product of the same inputs.
            """)

    @OptionGroup var options: BenchOptions

    @Option(help: "Matrix size n (ignored with --data).")
    var size = 2048

    @Option(help: "Element types: float32, float64 or both.")
    var dtype = "float32"

    @Option(help: "Backends to time, comma separated, from blas, simd, reference (reference only for n ≤ 512).")
    var backends = "blas,simd"

    @Option(help: "OpenBLAS core types to time in child processes for comparison ('auto' = OpenBLAS's own detection; 'none' to skip).")
    var compareCores = "auto"

    @Flag(name: .customLong("raw-only"), help: .hidden)
    var rawOnly = false

    func validate() throws {
        guard size >= 1 && size <= 16384 else { throw ValidationError("--size must be in 1...16384") }
        guard ["float32", "float64", "both"].contains(dtype) else { throw ValidationError("--dtype must be float32, float64 or both") }
        for b in backends.split(separator: ",") where Backend(rawValue: String(b)) == nil {
            throw ValidationError("unknown backend '\(b)' in --backends (use blas, simd, reference)")
        }
    }

    func run() throws {
        if rawOnly {
            let result = try timeRaw(Float.self)
            print(try JSONOutput.line(result))
            return
        }
        let system = SystemReport.current()
        if !options.json { print(system.headline) }
        var rows: [BenchRow] = []
        var summary: [String] = []
        if dtype != "float64" { try measure(Float.self, &rows, &summary) }
        if dtype != "float32" { try measure(Double.self, &rows, &summary) }
        try BenchReport(system: system, rows: rows, summary: summary).emit(options, unit: "GFLOP/s", digits: 1)
    }

    // MARK: Measurement

    private func inputs<T: LinalgScalar>(_: T.Type) throws -> (Matrix<T>, Matrix<T>) {
        if let data = options.data {
            let a = try NPY.readMatrix(data + "/gemm_a.npy", as: T.self)
            let b = try NPY.readMatrix(data + "/gemm_b.npy", as: T.self)
            guard a.isSquare, b.isSquare, a.rows == b.rows else {
                throw ValidationError("gemm_a.npy is \(a.rows)×\(a.columns), gemm_b.npy \(b.rows)×\(b.columns): need equal square matrices")
            }
            return (a, b)
        }
        var generator = Philox(seed: 12345)
        return (generator.matrix(rows: size, columns: size), generator.matrix(rows: size, columns: size))
    }

    private func gflops(_ n: Int, _ seconds: Double) -> Double { 2 * Double(n) * Double(n) * Double(n) / seconds * 1e-9 }

    private func measure<T: LinalgScalar>(_: T.Type, _ rows: inout [BenchRow], _ summary: inout [String]) throws {
        let (a, b) = try inputs(T.self)
        let n = a.rows
        let workload = "W1 gemm"
        var medians: [String: Double] = [:]
        let tag = T.dtypeName
        var c = Matrix<T>(rows: n, columns: n)
        let exact = try Linalg.matmul(a.converted(to: Double.self), b.converted(to: Double.self), backend: NativeBLAS.isAvailable ? .blas : .simd)
        func relativeError() -> Double {
            var num = 0.0, den = 0.0
            c.withUnsafeBufferPointer { pc in exact.withUnsafeBufferPointer { pe in
                for i in pc.indices { let d = Double(pc[i]) - pe[i]; num += d * d; den += pe[i] * pe[i] }
            } }
            return (num / max(den, .leastNormalMagnitude)).squareRoot()
        }
        let requested = backends.split(separator: ",").compactMap { Backend(rawValue: String($0)) }
            .filter { $0 != .reference || n <= 512 }
        let useBlas = requested.contains(.blas) && NativeBLAS.isAvailable
        let others = requested.filter { $0 != .blas }

        // The blas library call and the raw call are interleaved round by round, so both see the same
        // machine state. The other backends run in their own block afterwards, after a pause: OpenBLAS's
        // worker threads spin for ~0.1 s after a call and would steal a core from the simd threads.
        var library: [Double] = [], raw: [Double] = [], times = [Backend: [Double]]()
        var craw = Matrix<T>(rows: n, columns: n)
        var errors = [Backend: Double]()
        if useBlas {
            for round in 0...options.reps {  // round 0 is the warm-up
                let t = try Timing.seconds { try Linalg.gemm(a, b, into: &c, backend: .blas) }
                if round == 0 { errors[.blas] = relativeError() } else { library.append(t) }
                let r = Timing.seconds { rawCall(a, b, &craw) }
                if round > 0 { raw.append(r) }
            }
        }
        for backend in others {
            Thread.sleep(forTimeInterval: 0.3)
            for round in 0...options.reps {
                let t = try Timing.seconds { try Linalg.gemm(a, b, into: &c, backend: backend) }
                if round == 0 { errors[backend] = relativeError() } else { times[backend, default: []].append(t) }
            }
        }
        if useBlas {
            let core = NativeBLAS.coreName ?? "?"
            rows.append(BenchRow(workload: workload, peer: "faultline \(tag) Linalg.gemm blas (\(core))", times_s: library,
                                 throughput: gflops(n, Timing.median(library)), throughput_unit: "GFLOP/s",
                                 key: String(format: "rel.err %.1e", errors[.blas] ?? .nan)))
            rows.append(BenchRow(workload: workload, peer: "faultline \(tag) raw shim cblas call (\(core))", times_s: raw,
                                 throughput: gflops(n, Timing.median(raw)), throughput_unit: "GFLOP/s", key: "same library, no Swift layer"))
            medians["blas"] = Timing.median(library)
            summary.append(String(format: "%@ n=%d: library gemm / raw shim call = %.3f× (throughput ratio)",
                                  tag, n, Timing.median(raw) / Timing.median(library)))
        }
        for backend in others {
            let t = times[backend] ?? []
            rows.append(BenchRow(workload: workload, peer: "faultline \(tag) Linalg.gemm \(backend) (\(Linalg.simdThreads) threads)",
                                 times_s: t, throughput: gflops(n, Timing.median(t)), throughput_unit: "GFLOP/s",
                                 key: String(format: "rel.err %.1e", errors[backend] ?? .nan)))
            if let blas = medians["blas"] {
                summary.append(String(format: "%@ n=%d: %@ backend reaches %.1f%% of the blas backend",
                                      tag, n, backend.rawValue, 100 * blas / Timing.median(t)))
            }
        }
        if T.self == Float.self, NativeBLAS.isAvailable {
            for core in compareCores.split(separator: ",").map(String.init) where core != "none" {
                guard let child = try? childRaw(core: core, n: n) else {
                    summary.append("OpenBLAS core '\(core)': child process failed (the CPU may not support that kernel)")
                    continue
                }
                rows.append(BenchRow(workload: workload, peer: "Debian OpenBLAS, core \(core == "auto" ? "auto-detected" : "forced") = \(child.core) (raw call, child process)",
                                     times_s: child.times, throughput: gflops(n, Timing.median(child.times)), throughput_unit: "GFLOP/s",
                                     key: "OPENBLAS_CORETYPE \(core == "auto" ? "unset" : core)"))
                if let ours = medians["blas"] {
                    summary.append(String(format: "float32 n=%d: library gemm is %.2f× OpenBLAS with core %@ (%@)",
                                          n, Timing.median(child.times) / ours, child.core, core == "auto" ? "its own detection" : "forced"))
                }
            }
        }
    }

    private func rawCall<T: LinalgScalar>(_ a: Matrix<T>, _ b: Matrix<T>, _ c: inout Matrix<T>) {
        let n = a.rows
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
            NativeBLAS.rawSquareGEMM(n: n, a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
        } } }
    }

    struct RawResult: Codable { var core: String; var times: [Double] }

    /// In a child process: raw cblas_sgemm with the given core type (OpenBLAS fixes it at load time).
    private func timeRaw<T: LinalgScalar>(_: T.Type) throws -> RawResult {
        guard NativeBLAS.isAvailable else { throw ValidationError("BLAS not loaded: \(NativeBLAS.status.error)") }
        let (a, b) = try inputs(T.self)
        var c = Matrix<T>(rows: a.rows, columns: a.rows)
        rawCall(a, b, &c)
        let times = (0..<options.reps).map { _ in Timing.seconds { rawCall(a, b, &c) } }
        return RawResult(core: NativeBLAS.coreName ?? "?", times: times)
    }

    private func childRaw(core: String, n: Int) throws -> RawResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var arguments = ["bench", "gemm", "--raw-only", "--size", String(n), "--reps", String(options.reps)]
        if let data = options.data { arguments += ["--data", data] }
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_CORETYPE"] = nil
        environment["OPENBLAS_L2_SIZE"] = nil
        environment["FAULTLINE_CORETYPE"] = core == "auto" ? "auto" : core
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("child exited with \(process.terminationStatus)") }
        return try JSONDecoder().decode(RawResult.self, from: output)
    }
}
