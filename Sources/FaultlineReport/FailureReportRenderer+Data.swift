import FaultlineAnalysis
import Foundation

extension FailureReportRenderer {
    /// The "Data" section: label issues on the test split and train/test duplicates.
    static func dataSection(_ d: FailureReport.DataQuality) -> HTMLReport.Section {
        var paragraphs: [String] = [], tables: [(header: [String], rows: [[String]])] = []
        if let l = d.labelIssues {
            paragraphs.append(String(format: "Label issues (confident learning, %@, ranked by %@) on the %@ split from %@ probabilities: "
                                     + "%d of %d rows flagged (%.2f%%); estimated share of wrong labels %.2f%% (1 − trace of the calibrated joint).",
                                     l.filter, l.ranking, l.split, l.probabilities, l.issues, l.samples,
                                     100 * Double(l.issues) / Double(max(l.samples, 1)), 100 * l.estimatedNoiseRate))
            if !l.top.isEmpty {
                tables.append((["row", "given label", "predicted", "score"], l.top.map { [String($0.row), String($0.given), String($0.predicted), f4($0.score)] }))
            }
            tables.append((["given label", "flagged", "threshold"], l.perClass.indices.map { [String($0), String(l.perClass[$0]), f4(l.thresholds[$0])] }))
        }
        if let k = d.leakage {
            let rule = k.relativeFactor.map { String(format: "%g × the median nearest-neighbour distance within train (%.4g)", $0, k.medianTrainNeighbourDistance ?? 0) }
                ?? "an absolute L2 distance"
            var text = String(format: "Train/test duplicates (L2 on the raw features, threshold %.4g = %@): %d of %d test rows equal a training row, "
                              + "%d lie within the threshold.", k.threshold, rule, k.exactDuplicateTestRows, k.testRows, k.nearDuplicateTestRows)
            if let e = k.exactLabelConflicts, let n = k.nearLabelConflicts {
                text += " Label conflicts: \(e) exact and \(n) near duplicates carry another label than their training twin."
            }
            paragraphs.append(text)
            if !k.pairs.isEmpty {
                tables.append((["test row", "train row", "distance", "exact", "labels"], k.pairs.map {
                    [String($0.test), String($0.train), String(format: "%.4g", $0.distance), $0.exact ? "yes" : "", $0.labelsDiffer.map { $0 ? "differ" : "agree" } ?? ""]
                }))
            }
        }
        return .init(heading: "Data: labels and leakage", paragraphs: paragraphs + d.notes, tables: tables)
    }
}
