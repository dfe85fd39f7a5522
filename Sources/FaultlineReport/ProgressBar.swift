import FaultlineAnalysis
import Foundation

/// A progress bar on stderr for long work: redrawn in place on a terminal (bar, percentage, elapsed time
/// and the estimated time left), one line per 25 % and one per new phase otherwise (logs stay short),
/// silent with `quiet`.
/// Never writes to stdout, which stays parseable. The estimate assumes the remaining units cost what the
/// finished ones did (elapsed · (1 − f)/f); it appears once 2 % is done.
public final class ProgressBar {
    /// The text before the bar.
    public let label: String
    /// Units of work in all (≥ 1 for a visible bar).
    public let total: Int
    /// Whether nothing is written.
    public let quiet: Bool
    private let interactive = isatty(STDERR_FILENO) != 0
    private var lastQuarter = -1
    private var lastPhase: String?
    /// When the first update came: the clock of the elapsed time and the estimate starts there, not at init.
    private var start: Date?

    /// Set on the ranks other than 0 of a distributed job: their bars are silent (only rank 0 draws).
    nonisolated(unsafe) public static var silentRank = false

    /// A bar for `total` units of work (at least 1); silent with `quiet` or on a `silentRank`.
    public init(_ label: String, total: Int, quiet: Bool) {
        self.label = label
        self.total = max(total, 1)
        self.quiet = quiet || ProgressBar.silentRank
    }

    /// `done` units finished (clamped to the total); `detail` is shown after the percentage. Without a
    /// terminal a line is written per 25 % and whenever `phase` (e.g. a report's stage) changes.
    public func update(_ done: Int, detail: String = "", phase: String? = nil) {
        guard !quiet else { return }
        let begun = start ?? Date()
        start = begun
        let fraction = min(1, Double(max(done, 0)) / Double(total)), elapsed = Date().timeIntervalSince(begun)
        let timing = String(format: "%.0f s", elapsed) + (fraction >= 0.02 && fraction < 1 ? String(format: ", ~%.0f s left", elapsed * (1 - fraction) / fraction) : "")
        if interactive {
            let width = 30, filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let line = String(format: "\r%@ [%@] %3.0f%% %@ (%@)\u{1B}[K", label, bar, 100 * fraction, detail, timing)
            FileHandle.standardError.write(Data(line.utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            let quarter = Int(fraction * 4)
            if quarter > lastQuarter || (phase != nil && phase != lastPhase) {
                (lastQuarter, lastPhase) = (max(quarter, lastQuarter), phase)
                FileHandle.standardError.write(Data(String(format: "%@: %3.0f%% %@ (%@)\n", label, 100 * fraction, detail, timing).utf8))
            }
        }
    }

    /// A line of its own (e.g. one per training epoch), written above the bar on a terminal; silent like
    /// the bar.
    public func note(_ line: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + line + "\n").utf8))
    }
}

extension ProgressBar {
    /// Shows a report build's progress on a bar of `total` units (e.g. 1,000): the whole build's share
    /// done, the time left estimated from it, and the stage, step and the stage's share as the detail.
    public func update(_ progress: FailureReport.Progress) {
        update(Int((progress.fraction * Double(total)).rounded(.down)),
               detail: String(format: "%@ %.0f%%", progress.description, 100 * progress.stageFraction), phase: progress.stage)
    }
}
