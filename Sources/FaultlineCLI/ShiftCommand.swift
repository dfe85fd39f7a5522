import ArgumentParser
import FaultlineIO
import FaultlineInputs
import FaultlineLinalg
import FaultlineReport
import FaultlineShift
import Foundation

/// `faultline shift fit | score`: out-of-distribution detectors on features.
struct ShiftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shift",
        abstract: "Fit an out-of-distribution detector on training features, then score new features (higher = more shifted).",
        subcommands: [Fit.self, Score.self])

    struct Fit: ParsableCommand, DistributedCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fit a Mahalanobis, per-class Mahalanobis, relative-Mahalanobis or KNN detector and save it (.safetensors).",
            discussion: """
                Mahalanobis: class means and one tied covariance (normalised by n) from --features and --labels; shrinkage \
                --shrinkage ledoit-wolf | oas | a number in [0, 1). per-class: one covariance per class (each class needs \
                more samples than dimensions, or a numeric --shrinkage); --log-determinant adds log det Σ_k (the Gaussian \
                likelihood). Relative Mahalanobis subtracts the distance under one Gaussian of all classes. KNN keeps the \
                L2-normalised features (k-th neighbour distance). --accumulation float32 forms the covariance from float32 \
                block products merged in float64 (about twice as fast, ~1e-6 relative).
                A flagging threshold is stored with the detector when in-distribution scores are held out: \
                --calibration-features (features the detector is not fitted on) or --holdout F (a seeded random \
                fraction F of --features, the detector then fitted on the rest). It is the split-conformal \
                quantile, so a new in-distribution sample is flagged (score > threshold) with probability ≤ --fpr; \
                `shift score` then says how many samples are flagged. Exit code 2 on bad input.
                """)
        @Option(help: "Training features (N×D).") var features: String
        @Option(help: "Integer labels (N); needed for the Mahalanobis detectors.") var labels: String?
        @Option(help: "mahalanobis, per-class, relative or knn.") var detector = "mahalanobis"
        @Option(help: "ledoit-wolf, oas or a fixed value in [0, 1).") var shrinkage = "ledoit-wolf"
        @Option(help: "k for KNN.") var k = 50
        @Option(help: "float64 or float32 (block products of the covariance).") var accumulation = "float64"
        @Flag(help: "per-class: add log det Σ_k to each class's distance.") var logDeterminant = false
        @Option(help: "Held-out in-distribution features (M×D) to calibrate a flagging threshold on.") var calibrationFeatures: String?
        @Option(help: "Hold out this fraction (0–1) of --features to calibrate a flagging threshold on.") var holdout: Double?
        @Option(help: "False-positive rate the threshold is calibrated for.") var fpr = 0.05
        @Option(help: "Seed of the --holdout split.") var seed: UInt64 = 0
        @Option(help: "Output detector file.") var out: String

        var kind: DetectorFile.Detector.Kind { DetectorFile.Detector.Kind(rawValue: detector) ?? .mahalanobis }
        var shrinkageValue: DetectorFile.Detector.Shrinkage {
            switch shrinkage {
            case "ledoit-wolf": .ledoitWolf
            case "oas": .oas
            default: .fixed(Double(shrinkage) ?? .nan)
            }
        }

        /// Option values alone, checked at parse time (usage errors, before any file is read).
        func validate() throws {
            try OptionCheck.atParse {
                guard DetectorFile.Detector.Kind(rawValue: detector) != nil else { throw InputError("--detector must be mahalanobis, per-class, relative or knn") }
                guard ["float64", "float32"].contains(accumulation) else { throw InputError("--accumulation must be float64 or float32") }
                if case .fixed(let s) = shrinkageValue, !(s >= 0 && s < 1) {
                    throw InputError("--shrinkage must be ledoit-wolf, oas or a number in [0, 1) (got '\(shrinkage)')")
                }
                if kind == .perClass && shrinkageValue == .oas { throw InputError("--detector per-class takes a numeric --shrinkage (0 for none)") }
                if kind == .relative && shrinkageValue == .ledoitWolf { throw InputError("--detector relative takes --shrinkage oas or a number") }
                if let holdout { try OptionCheck.real(holdout, "--holdout", .openUnit) }
                try OptionCheck.real(fpr, "--fpr", .openUnit)
                guard calibrationFeatures == nil || holdout == nil else { throw InputError("give --calibration-features or --holdout, not both") }
            }
        }

        func run() throws {
            let summary = try Inputs.guarded("shift fit") { () -> String in
                if Job.world.size > 1 { return try runDistributed() }
                var x = try Inputs.features(features, option: "--features", finite: true)
                var y = try labels.map { labels in
                    let y = try Inputs.labels(labels, option: "--labels")
                    guard y.count == x.rows else { throw InputError("--features \(features) has \(x.rows) rows but --labels \(labels) has \(y.count) labels") }
                    return y
                }
                guard kind == .knn || y != nil else { throw InputError("--detector \(detector) needs --labels") }
                // Held-out in-distribution rows for the threshold: a file, or a seeded fraction of --features.
                var calibration: Matrix<Float>?
                if let path = calibrationFeatures {
                    let c = try Inputs.features(path, option: "--calibration-features", finite: true)
                    guard c.columns == x.columns else {
                        throw InputError("--calibration-features \(path) has \(c.columns) features, --features \(features) \(x.columns)")
                    }
                    calibration = c
                } else if let holdout {
                    let held = LabeledDataset.sampleRows(Int((holdout * Double(x.rows)).rounded()), of: x.rows, seed: seed)
                    let isHeld = Set(held), kept = (0..<x.rows).filter { !isHeld.contains($0) }
                    guard !held.isEmpty, !kept.isEmpty else {
                        throw InputError("--holdout \(holdout) of \(x.rows) rows leaves \(held.count) to calibrate on and \(kept.count) to fit; use more rows or another fraction")
                    }
                    calibration = x.gatherRows(held)
                    (x, y) = (x.gatherRows(kept), y.map { labels in kept.map { labels[$0] } })
                }
                if kind == .knn { try OptionCheck.count(k, "--k", 1...min(x.rows, OptionCheck.Limit.neighbours)) }
                let saved = try DetectorFile.Detector.fit(kind, features: x, labels: y, shrinkage: shrinkageValue,
                                                          accumulation: accumulation == "float32" ? .float32Blocks : .float64,
                                                          logDeterminant: logDeterminant, k: k)
                let threshold = try calibration.map { c in
                    try DetectorThreshold.calibrate(inDistribution: try saved.score(c), falsePositiveRate: fpr)
                }
                try DetectorFile.save(saved, threshold: threshold, to: out)
                var summary = "fitted \(detector) on \(x.rows)×\(x.columns) features"
                if let threshold {
                    summary += "; flags scores > \(threshold.value) (false-positive rate ≤ \(fpr) on \(threshold.calibrationSamples) held-out samples)"
                }
                return summary + "; wrote \(out)"
            }
            if !Job.quiet { print(summary) }
        }

        /// Under mpirun: each rank reads its rows (RowSplit.even) of --features (and --calibration-features),
        /// the Gaussian fits are merged (`DetectorFile.Detector.fit(_:shard:…)`), calibration scores are
        /// all-gathered for the threshold, and rank 0 writes --out. KNN and --holdout are refused.
        func runDistributed() throws -> String {
            let world = Job.world
            let (x, y, calibration) = try world.agree { () throws -> (Inputs.Shard, [Int], Inputs.Shard?) in
                guard kind != .knn else { throw InputError("--detector knn keeps every reference row and is not distributed; run it without mpirun") }
                guard holdout == nil else { throw InputError("--holdout samples rows of the whole file; under mpirun give --calibration-features instead") }
                guard let labels else { throw InputError("--detector \(detector) needs --labels") }
                let x = try Inputs.featureShard(features, option: "--features", finite: true, rows: Job.evenRows)
                let y = try Inputs.labels(labels, option: "--labels")
                guard y.count == x.total else { throw InputError("--features \(features) has \(x.total) rows but --labels \(labels) has \(y.count) labels") }
                let c = try calibrationFeatures.map { path in
                    let c = try Inputs.featureShard(path, option: "--calibration-features", finite: true, rows: Job.evenRows)
                    guard c.matrix.columns == x.matrix.columns else {
                        throw InputError("--calibration-features \(path) has \(c.matrix.columns) features, --features \(features) \(x.matrix.columns)")
                    }
                    return c
                }
                return (x, Array(y[x.rows]), c)
            }
            let saved = try Job.uniformly {
                try DetectorFile.Detector.fit(kind, shard: x.matrix, labels: y, shrinkage: shrinkageValue,
                                              accumulation: accumulation == "float32" ? .float32Blocks : .float64,
                                              logDeterminant: logDeterminant, communicator: world)
            }
            // Every rank has --calibration-features or none (the same option): without it, no collective here.
            var threshold: DetectorThreshold?
            if let calibration {
                let local = try world.agree { calibration.matrix.rows == 0 ? [] : try saved.score(calibration.matrix) }
                let scores = try world.allgatherv(local)
                threshold = try world.agree { try DetectorThreshold.calibrate(inDistribution: scores, falsePositiveRate: fpr) }
            }
            try world.agree { if world.rank == 0 { try DetectorFile.save(saved, threshold: threshold, to: out) } }
            var summary = "fitted \(detector) on \(x.total)×\(x.matrix.columns) features on \(world.size) ranks"
            if let threshold {
                summary += "; flags scores > \(threshold.value) (false-positive rate ≤ \(fpr) on \(threshold.calibrationSamples) held-out samples)"
            }
            return summary + "; wrote \(out)"
        }
    }

    struct Score: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Score features with a saved detector; with --ood, report AUROC, AUPR and FPR@95TPR of telling them apart.",
            discussion: "Writes the scores of --features (and --ood) to --out (.npy or .npz) if given. Exit code 2 on bad input.")
        @Option(help: "Detector file written by `shift fit`.") var detector: String
        @Option(help: "In-distribution (or unknown) features to score.") var features: String
        @Option(help: "Features known to be shifted, for detection metrics.") var ood: String?
        @Option(help: "Write scores to this .npz (arrays 'scores' and 'ood_scores').") var out: String?
        @Flag(help: "Print JSON.") var json = false

        struct Report: Codable {
            var samples: Int; var meanScore: Double; var oodSamples: Int?; var metrics: DetectionMetrics?
            /// With a detector saved with a threshold: it, and how many samples of each set exceed it.
            var threshold: DetectorThreshold?; var flagged: Int?; var oodFlagged: Int?
        }

        func run() throws {
            let report = try Inputs.guarded("shift score") { () -> Report in
                let (d, threshold) = try Inputs.naming("--detector") { () -> (DetectorFile.Detector, DetectorThreshold?) in
                    let file = try SafeTensors.read(detector)
                    return (try DetectorFile.load(file, name: detector), try DetectorFile.threshold(in: file, name: detector))
                }
                let x = try Inputs.features(features, option: "--features", finite: true)
                let scores = try Inputs.concerning("--features", features) { try d.score(x) }
                var report = Report(samples: scores.count, meanScore: scores.reduce(0.0) { $0 + Double($1) } / Double(max(scores.count, 1)))
                (report.threshold, report.flagged) = (threshold, threshold?.flaggedCount(scores))
                var arrays: [(name: String, tensor: Tensor)] = [("scores", Tensor(shape: [scores.count], values: scores))]
                if let ood {
                    let o = try Inputs.features(ood, option: "--ood", finite: true)
                    let shifted = try Inputs.concerning("--ood", ood) { try d.score(o) }
                    report.oodSamples = shifted.count
                    report.metrics = try DetectionMetrics.compute(inDistribution: scores, outOfDistribution: shifted)
                    arrays.append(("ood_scores", Tensor(shape: [shifted.count], values: shifted)))
                    report.oodFlagged = threshold?.flaggedCount(shifted)
                }
                if let out { try NPZ.write(arrays, to: out) }
                return report
            }
            if json { print(try JSONOutput.string(report)); return }
            print("\(report.samples) samples" + String(format: ", mean score %.4f", report.meanScore))
            if let t = report.threshold, let flagged = report.flagged {
                print("\(flagged) of \(report.samples) flagged as shifted (score > \(t.value), calibrated for a false-positive rate ≤ "
                      + "\(t.falsePositiveRate) on \(t.calibrationSamples) held-out in-distribution samples)")
                if let o = report.oodFlagged, let n = report.oodSamples { print("\(o) of \(n) --ood samples flagged (the detection rate at that threshold)") }
            } else {
                print("No flagging threshold in the detector: fit with --holdout or --calibration-features to get one.")
            }
            if let m = report.metrics {
                print(TextTable.grid(header: ["AUROC", "AUPR-in", "AUPR-out", "FPR@95TPR"], rows: [[m.auroc, m.auprIn, m.auprOut, m.fprAt95TPR].map { String(format: "%.4f", $0) }]))
            }
        }
    }
}
