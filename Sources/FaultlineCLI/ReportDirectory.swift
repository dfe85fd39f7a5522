import FaultlineIO
import FaultlineLinalg
import Foundation

/// Writes a report directory with `AtomicDirectory`: `--out` becomes a link to a complete version
/// directory, replaced in one rename, so a crash (or kill -9) at any point leaves the previous or the new
/// complete report, and the next run removes what a crash left behind.
enum ReportDirectory {
    static func write(to path: String, files: [String: Data]) throws {
        try OptionCheck.directoryTarget(path, "--out")  // never replace (delete) a user's file
        // Crash-test hook (Benchmarks/robustness/kill-test.sh): FAULTLINE_TEST_STAGE_PAUSE=SECONDS sleeps at every
        // stage of the publish so that kill -9 lands inside each window.
        let pause = ProcessInfo.processInfo.environment["FAULTLINE_TEST_STAGE_PAUSE"].flatMap(Double.init).map { min(max($0, 0), 10) }
        try AtomicDirectory.publish(files, at: path, stage: pause.map { seconds in { _ in usleep(UInt32(seconds * 1e6)) } })
    }
}

extension Matrix where Scalar == Float {
    /// Rows rescaled to sum to 1 exactly in float32 arithmetic as far as it allows (softmax outputs drift by
    /// a few ulp; the reliability kernels check sums to 1e-3).
    func normalizedRows() -> Matrix<Float> {
        var out = self
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<rows {
                var s: Float = 0
                for j in 0..<columns { s += p[i * columns + j] }
                for j in 0..<columns { p[i * columns + j] /= s }
            }
        }
        return out
    }
}

extension Matrix {
    /// Element-wise combination of two matrices of the same shape.
    func zipMap(_ other: Matrix, _ f: (Scalar, Scalar) -> Scalar) -> Matrix {
        precondition(rows == other.rows && columns == other.columns, "zipMap: shapes differ")
        var out = self
        out.withUnsafeMutableBufferPointer { o in other.withUnsafeBufferPointer { b in for i in o.indices { o[i] = f(o[i], b[i]) } } }
        return out
    }
}
