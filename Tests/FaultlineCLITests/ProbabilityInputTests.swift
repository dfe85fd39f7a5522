import Foundation
import Testing
import _TestSupport

/// Probabilities and logits reach the library as given: no silent renormalisation, NaN logits reported
/// as logits with the file, row and column, and thread-count-independent results.
@Suite("faultline: probability and logit inputs")
struct ProbabilityInputTests {
    typealias A = AnalysisCommandTests

    /// Rows of (p, 2p, …) scores: positive but summing to 3, 1.5, … instead of 1.
    static func unnormalised(_ n: Int, _ c: Int) -> ([Float], [Int]) {
        let (z, y) = A.logits(n, c, seed: 5, margin: 1)
        var p: [Float] = []
        for i in 0..<n {
            let e = z[(i * c)..<((i + 1) * c)].map { Foundation.exp($0) }, s = e.reduce(0, +)
            p += e.map { $0 / s * Float(1 + i % 3) }
        }
        return (p, y)
    }

    /// calibrate, conformal and uncertainty reject rows that do not sum to 1 (naming the option, the file and
    /// the row, and the flag that renormalises), and accept them with --renormalize.
    @Test func unnormalisedProbabilitiesAreRejectedUnlessAskedFor() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        let (p, y) = Self.unnormalised(60, 4)
        try A.write(p, shape: [60, 4], to: dir + "/p.npy")
        try A.write(p + p, shape: [2, 60, 4], to: dir + "/stacked.npy")
        try A.writeLabels(y, to: dir + "/y.npy")
        let commands: [[String]] = [
            ["calibrate", "--probs", dir + "/p.npy", "--labels", dir + "/y.npy"],
            ["conformal", "--calibration-probs", dir + "/p.npy", "--calibration-labels", dir + "/y.npy", "--probs", dir + "/p.npy", "--alpha", "0.2"],
            ["uncertainty", "--stacked", dir + "/stacked.npy"],
            ["uncertainty", "--member", dir + "/p.npy", "--member", dir + "/p.npy"],
        ]
        for arguments in commands {
            let r = try CLIRunner.run(arguments)
            #expect(r.status == 2, "\(arguments[0]) accepted rows that sum to 2: \(r.stdout)")
            #expect(r.stderr.contains(dir + "/") && (r.stderr.contains("row 1") || r.stderr.contains("[1, ")) && r.stderr.contains("--renormalize"), "\(r.stderr)")
            let fixed = try CLIRunner.run(arguments + ["--renormalize"])
            #expect(fixed.status == 0, "\(arguments[0]) --renormalize: \(fixed.stderr)")
        }
    }

    /// NaN or ±∞ logits are named as logits, with the option, file, row and column.
    @Test func nonFiniteLogitsAreNamedAsLogits() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        let (z, y) = A.logits(30, 5, seed: 8, margin: 1)
        try A.writeLabels(y, to: dir + "/y.npy")
        for (row, column, value) in [(3, 1, Float.nan), (0, 0, .infinity), (29, 4, -.infinity)] {
            var bad = z
            bad[row * 5 + column] = value
            try A.write(bad, shape: [30, 5], to: dir + "/z.npy")
            let r = try CLIRunner.run(["calibrate", "--logits", dir + "/z.npy", "--labels", dir + "/y.npy"])
            #expect(r.status == 2)
            #expect(r.stderr.contains("--logits \(dir)/z.npy") && r.stderr.contains("logit[\(row), \(column)]") && !r.stderr.contains("probabilit"), "\(r.stderr)")
            try A.write(bad + z, shape: [2, 30, 5], to: dir + "/zs.npy")
            let u = try CLIRunner.run(["uncertainty", "--stacked", dir + "/zs.npy", "--logits"])
            #expect(u.status == 2 && u.stderr.contains("member 0, logit[\(row), \(column)]"), "\(u.stderr)")
        }
    }

    /// calibrate (default backend) and drift (simd backend) print the same JSON with FAULTLINE_THREADS=1 and 2:
    /// Faultline's own reductions use a fixed number of parts. (OpenBLAS's sgemm itself rounds differently
    /// with 1 and 2 threads, so GEMM-based results on the blas backend are not covered; see MMDTest.)
    @Test func resultsDoNotDependOnTheThreadCount() throws {
        let dir = ModelCommandTests.temporaryDirectory()
        let (z, y) = A.logits(3000, 7, seed: 12, margin: 1.5)
        try A.write(z, shape: [3000, 7], to: dir + "/z.npy")
        try A.writeLabels(y, to: dir + "/y.npy")
        for arguments in [["calibrate", "--logits", dir + "/z.npy", "--labels", dir + "/y.npy", "--fit", "temperature",
                           "--calibration-logits", dir + "/z.npy", "--calibration-labels", dir + "/y.npy", "--json"],
                          ["drift", "--reference", dir + "/z.npy", "--current", dir + "/z.npy", "--permutations", "20", "--json"]] {
            let backend: String? = arguments[0] == "drift" ? "simd" : nil
            let one = try CLIRunner.run(arguments, environment: ["FAULTLINE_THREADS": "1", "FAULTLINE_BACKEND": backend])
            let two = try CLIRunner.run(arguments, environment: ["FAULTLINE_THREADS": "2", "FAULTLINE_BACKEND": backend])
            #expect(one.status == 0 && two.status == 0, "\(one.stderr) \(two.stderr)")
            #expect(one.stdout == two.stdout, "\(arguments[0]): output depends on FAULTLINE_THREADS")
        }
    }
}
