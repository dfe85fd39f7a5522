import FaultlineAnalysis
import FaultlineIO
import Foundation

extension FailureReportRenderer {
    /// Writes every file of the report (`files(_:)`) as the directory `path` with `AtomicDirectory`: `path`
    /// becomes a link to a complete version directory, replaced in one rename, so a crash (or kill -9) at any
    /// point leaves the previous or the new complete report, and the next run removes what a crash left
    /// behind. A regular file (anything but a directory or a link) at `path` is never replaced. Returns the
    /// files written.
    ///
    /// Crash-test hook (Benchmarks/robustness/kill-test.sh): with FAULTLINE_TEST_STAGE_PAUSE=SECONDS (≤ 10)
    /// in the environment, the publish sleeps at every stage so that kill -9 lands inside each window.
    /// - Throws: `IOError` naming `path` (unwritable, not a directory); rendering errors.
    @discardableResult
    public static func write(_ report: FailureReport, to path: String) throws -> [String: Data] {
        let files = try files(report)
        let pause = ProcessInfo.processInfo.environment["FAULTLINE_TEST_STAGE_PAUSE"].flatMap(Double.init).map { min(max($0, 0), 10) }
        try AtomicDirectory.publish(files, at: path, stage: pause.map { seconds in { _ in usleep(UInt32(seconds * 1e6)) } })
        return files
    }
}
