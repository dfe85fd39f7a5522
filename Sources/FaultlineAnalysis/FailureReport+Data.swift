import FaultlineIO
import FaultlineLinalg
import FaultlineReliability
import FaultlineShift

extension FailureReport {
    /// The report's "data" section: the quality of the data rather than of the model — label issues on
    /// the test split by confident learning, and test rows that duplicate training rows (leakage).
    /// Optional in report.json (reports written before it decode with nil).
    public struct DataQuality: Codable, Sendable {
        /// Confident learning on the test split; nil when it could not run (a note says why).
        public var labelIssues: LabelIssues?
        /// Train/test duplicates; `pairs` lists at most `listedPairs` of them (the counts are complete).
        public var leakage: TrainTestDuplicates?
        /// What was left out or how to read the section.
        public var notes: [String]

        /// Rows listed in the report (the counts cover every row).
        public static let listedRows = 25
        /// Duplicate pairs listed in the report.
        public static let listedPairs = 50
    }

    /// Label issues found by confident learning (`ConfidentLearning`).
    public struct LabelIssues: Codable, Sendable {
        /// The split and where its probabilities came from.
        public var split: String
        /// Where the probabilities came from (the given out-of-sample ones, or the analysed model's).
        public var probabilities: String
        /// The confident-learning filter (`ConfidentLearning.Filter` raw value).
        public var filter: String
        /// The ranking of the issues (`ConfidentLearning.Ranking` raw value).
        public var ranking: String
        /// Rows examined.
        public var samples: Int
        /// Rows flagged.
        public var issues: Int
        /// Flagged rows per given label.
        public var perClass: [Int]
        /// 1 − trace of the estimated joint: the share of labels estimated wrong.
        public var estimatedNoiseRate: Double
        /// Per-class thresholds: the mean self-confidence of each class's rows.
        public var thresholds: [Double]
        /// Counts of (given label, estimated true label), classes × classes.
        public var confidentJoint: [[Int]]
        /// The first `DataQuality.listedRows` issues, most suspect first.
        public var top: [Row]

        /// One flagged row.
        public struct Row: Codable, Sendable {
            /// The test row.
            public var row: Int
            /// Its given label.
            public var given: Int
            /// The class the probabilities favour.
            public var predicted: Int
            /// The label-quality score in [0, 1] (lower: more suspect).
            public var score: Double
        }
    }

    /// The data section of `build`: confident learning on the test split, from `given` probabilities
    /// (out-of-sample, e.g. cross-validated; with `options.maxSamples` the rows the test subsample kept)
    /// or else the analysed model's `probabilities`; and duplicates of the test rows in train at 0.05 ×
    /// the median nearest-neighbour distance within train (estimated on at most 2,000 training rows). A
    /// part the data cannot give (e.g. one class only, `given` of the wrong shape) is left nil or falls
    /// back to the model's probabilities, with a note; never throws.
    static func dataQualitySection(probabilities model: Matrix<Float>, test: LabeledDataset, train: LabeledDataset,
                                   given: Matrix<Float>? = nil, options: Options = Options()) -> DataQuality {
        var notes: [String] = []
        var issues: LabelIssues?
        var probabilities = model, source = "the analysed model's (trained without these rows, not cross-validated)"
        if var given {
            if given.rows > test.count, options.maxSamples != nil {
                given = given.gatherRows(LabeledDataset.sampleRows(test.count, of: given.rows, seed: options.seed))
            }
            if given.rows == test.count && given.columns == model.columns {
                (probabilities, source) = (given, "the given out-of-sample")
            } else {
                notes.append("The given label probabilities (\(given.rows)×\(given.columns)) do not fit the \(test.count) test rows of "
                             + "\(model.columns) classes; the model's probabilities are used.")
            }
        }
        do {
            let r = try ConfidentLearning.analyse(probabilities: probabilities, labels: test.labels)
            let predicted = (0..<probabilities.rows).map { i in
                (0..<probabilities.columns).max { probabilities[i, $0] < probabilities[i, $1] || (probabilities[i, $0] == probabilities[i, $1] && $0 > $1) }!
            }
            var perClass = [Int](repeating: 0, count: r.classes)
            for i in r.issues { perClass[test.labels[i]] += 1 }
            issues = LabelIssues(split: "test", probabilities: source,
                                 filter: r.filter.rawValue, ranking: r.ranking.rawValue, samples: r.samples, issues: r.issues.count,
                                 perClass: perClass, estimatedNoiseRate: 1 - (0..<r.classes).reduce(0.0) { $0 + r.joint[$1][$1] },
                                 thresholds: r.thresholds, confidentJoint: r.confidentJoint,
                                 top: r.issues.prefix(DataQuality.listedRows).map { .init(row: $0, given: test.labels[$0], predicted: predicted[$0], score: r.scores[$0]) })
            if source.hasPrefix("the analysed") {
                notes.append("Label issues use the model's own probabilities on the test rows: a flagged row is one the model confidently assigns "
                             + "to another class than its label — a wrong label or a model error, which one model cannot tell apart. Give "
                             + "cross-validated probabilities (report --label-probs, or faultline data issues) to separate them.")
            }
        } catch {
            notes.append("No label issues: \(error)")
        }
        var leakage: TrainTestDuplicates?
        do {
            var found = try TrainTestDuplicates.find(train: train.features, test: test.features, threshold: .relativeToMedianNeighbour(0.05),
                                                     trainLabels: train.labels, testLabels: test.labels, maxPairsPerTestRow: 10, medianSampleRows: 2000)
            found.pairs = Array(found.pairs.prefix(DataQuality.listedPairs))
            leakage = found
        } catch {
            notes.append("No leakage check: \(error)")
        }
        return DataQuality(labelIssues: issues, leakage: leakage, notes: notes)
    }
}
