import ArgumentParser
import FaultlineInputs
import FaultlineReliability
import FaultlineReport
import FaultlineStatistics
import Foundation

/// `faultline bounds`: confidence intervals on a test error rate.
struct BoundsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bounds",
        abstract: "Confidence intervals on a test error (Clopper–Pearson, Wilson, Hoeffding) and the test-set size a target needs.",
        discussion: """
            --errors k --samples n: the three two-sided (1 − α) intervals, the one-sided Clopper–Pearson upper \
            bound, and for k = 0 the exact zero-failure bound 1 − α^(1/n) (≈ 3/n at α = 0.05). \
            --half-width h: the number of test samples for \
            which Hoeffding's half-width is at most h. Exit codes: 0 ok, 1 the upper bound exceeds --max-error, 2 bad input.
            """)

    @Option(help: "Errors observed.") var errors: Int?
    @Option(help: "Test samples.") var samples: Int?
    @Option(help: "1 − confidence.") var alpha = 0.05
    @Option(help: "Target Hoeffding half-width for the sample-size answer.") var halfWidth: Double?
    @Option(help: "Exit with code 1 when the Clopper–Pearson upper bound exceeds this.") var maxError: Double?
    @Flag(help: "Print JSON.") var json = false

    struct Report: Codable {
        var errors: Int?; var samples: Int?; var alpha: Double
        var clopperPearson: BinomialBounds.Interval?; var wilson: BinomialBounds.Interval?; var hoeffding: BinomialBounds.Interval?
        var samplesForHalfWidth: Int?
        /// One-sided Clopper–Pearson 1 − α upper bound, and 1 − α^(1/n) when there are no errors.
        var upperBound: Double?; var zeroFailureBound: Double?
    }

    func run() throws {
        let report = try Inputs.guarded("bounds") { () -> Report in
            try OptionCheck.real(alpha, "--alpha", .openUnit)
            if let maxError { try OptionCheck.real(maxError, "--max-error", .unit) }
            if let halfWidth {
                try OptionCheck.real(halfWidth, "--half-width", .openUnit)
                // n = ⌈ln(2/α) / (2h²)⌉ must be a representable sample count (≤ 2⁵³, exact in a Double).
                let needed = log(2 / alpha) / (2 * halfWidth * halfWidth)
                guard needed <= 0x1p53 else {
                    throw InputError("--half-width \(halfWidth) needs about \(String(format: "%.3g", needed)) test samples, more than 2^53; give a larger half-width")
                }
            }
            var r = Report(errors: errors, samples: samples, alpha: alpha)
            if let errors, let samples {
                try OptionCheck.count(samples, "--samples", 1...OptionCheck.Limit.testSamples)
                try OptionCheck.count(errors, "--errors", 0...samples)
                r.clopperPearson = try BinomialBounds.clopperPearson(errors: errors, samples: samples, alpha: alpha)
                r.wilson = try BinomialBounds.wilson(errors: errors, samples: samples, alpha: alpha)
                r.hoeffding = try BinomialBounds.hoeffding(errors: errors, samples: samples, alpha: alpha)
                r.upperBound = try BinomialBounds.clopperPearsonUpper(errors: errors, samples: samples, alpha: alpha)
                if errors == 0 { r.zeroFailureBound = try BinomialBounds.zeroFailureUpperBound(samples: samples, alpha: alpha) }
            } else if errors != nil || samples != nil {
                throw InputError("give both --errors and --samples")
            }
            if let halfWidth { r.samplesForHalfWidth = try BinomialBounds.hoeffdingSampleSize(halfWidth: halfWidth, alpha: alpha) }
            guard r.clopperPearson != nil || r.samplesForHalfWidth != nil else { throw InputError("give --errors and --samples, or --half-width") }
            return r
        }
        if json {
            print(try JSONOutput.string(report))
        } else {
            if let cp = report.clopperPearson, let w = report.wilson, let h = report.hoeffding {
                print("\(report.errors!) errors in \(report.samples!) samples" + String(format: " (%.4f), %.0f%% intervals:",
                                                                                    Double(report.errors!) / Double(report.samples!), 100 * (1 - alpha)))
                print(TextTable.grid(header: ["method", "lower", "upper"], rows: [("Clopper–Pearson", cp), ("Wilson", w), ("Hoeffding", h)].map {
                    [$0.0, String(format: "%.6f", $0.1.lower), String(format: "%.6f", $0.1.upper)]
                }))
                if let u = report.upperBound { print(String(format: "one-sided %.0f%% upper bound (Clopper–Pearson): %.6f", 100 * (1 - alpha), u)) }
                if let z = report.zeroFailureBound {
                    print(String(format: "0 errors in %@: error ≤ %.6g at %.0f%% (1 − α^(1/n); the rule of three gives %.6g)",
                                 String(report.samples!), z, 100 * (1 - alpha), 3 / Double(report.samples!)))
                }
            }
            if let n = report.samplesForHalfWidth { print("test samples for a Hoeffding half-width of \(halfWidth!): \(n)") }
        }
        if let maxError, let upper = report.clopperPearson?.upper, upper > maxError {
            printError("faultline bounds: the error may be as high as \(upper) (> --max-error \(maxError))")
            throw ExitCode(1)
        }
    }
}
