import Foundation

/// A progress bar on stderr: redrawn in place on a terminal, one line per 25 % otherwise, silent with
/// `quiet`. Never writes to stdout, which stays parseable.
final class ProgressBar {
    let label: String
    let total: Int
    let quiet: Bool
    private let interactive = isatty(STDERR_FILENO) != 0
    private var lastQuarter = -1
    private let start = Date()

    init(_ label: String, total: Int, quiet: Bool) {
        self.label = label
        self.total = max(total, 1)
        self.quiet = quiet
    }

    func update(_ done: Int, detail: String = "") {
        guard !quiet else { return }
        let fraction = min(1, Double(done) / Double(total))
        if interactive {
            let width = 30, filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let line = String(format: "\r%@ [%@] %3.0f%% %@", label, bar, 100 * fraction, detail)
            FileHandle.standardError.write(Data(line.utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            let quarter = Int(fraction * 4)
            if quarter > lastQuarter {
                lastQuarter = quarter
                printError(String(format: "%@: %3.0f%% %@ (%.1f s)", label, 100 * fraction, detail, Date().timeIntervalSince(start)))
            }
        }
    }
}

/// Messages for people go to stderr so stdout stays parseable.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
