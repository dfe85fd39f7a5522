import FaultlineLinalg
import FaultlineNN
import FaultlineReliability
import FaultlineRobustness

/// The robustness rows of a report: attacks per ε (upper bounds on robust accuracy) with CROWN (IBP for
/// graphs) beside them (a lower bound), evaluated through `TwoSidedEvaluation` so that every certificate is checked
/// against APGD-CE.
enum RobustnessTable {
    /// PGD with early stopping, clipped to the box: the report's workhorse attack.
    static func pgd(epsilon: Float, options: FailureReport.Options) -> GradientAttack { options.attackRecipe.pgd(epsilon: epsilon) }

    static func apgd(epsilon: Float, options: FailureReport.Options) -> APGDAttack { options.attackRecipe.apgd(epsilon: epsilon) }

    /// `tracker` (with `work`'s estimates) hears a step per certification and per attack, and every attack's row progress.
    static func evaluate(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], options: FailureReport.Options,
                         notes: inout [String], tracker: ProgressTracker? = nil, work: PlannedWork? = nil) throws -> [FailureReport.RobustnessRow] {
        let tracker = tracker ?? ProgressTracker(plan: [1], callback: nil), work = work ?? PlannedWork.none
        /// `attack` as a step of the tracker, its rows reported as they finish.
        func tracked(_ attack: any Attack, _ name: String, _ e: Float, _ estimate: Double) -> ReportingAttack {
            ReportingAttack(base: attack, tracker: tracker, step: "\(name) at ε \(e)", work: estimate)
        }
        let epsilons = options.epsilons.sorted()
        // APGD-CE on every row, and CROWN's flags beside it with the soundness check, when the model has bound
        // rules; graphs that are not layer chains (residual ONNX models) get IBP's in the certified column
        // (still `certifiedCROWN`).
        var twoSided: [TwoSidedEvaluation.Row]?
        if options.certify {
            do {
                let propagation = try BoundPropagation(classifier: model)
                let method: BoundPropagation.Method = propagation.supportsCROWN ? .crown : .ibp
                if let reason = propagation.crownUnavailableReason {
                    notes.append("CROWN skipped (\(reason)); the certified column (certifiedCROWN) holds IBP-certified accuracy "
                                 + "instead, a looser lower bound.")
                }
                twoSided = try TwoSidedEvaluation.evaluate(
                    model, x, labels: labels, epsilons: epsilons,
                    certified: { e in
                        try tracker.step("\(method == .crown ? "CROWN" : "IBP") certification at ε \(e)", work: work.certification) {
                            try propagation.certify(x, labels: labels, region: .init(epsilon: e, box: options.box), method: method)
                        }
                    },
                    attack: { e in tracked(apgd(epsilon: e, options: options), "APGD-CE", e, work.apgd) })
            } catch let error as CertificationError {
                notes.append("CROWN skipped: \(error)")
            }
        } else {
            notes.append("Certification not requested.")
        }
        let rows = try epsilons.enumerated().map { k, e -> FailureReport.RobustnessRow in
            let certified = twoSided?[k]
            var row = FailureReport.RobustnessRow(
                epsilon: e, pgd20: try tracked(pgd(epsilon: e, options: options), "PGD-\(options.pgdSteps)", e, work.pgd).robustAccuracy(model, x, labels: labels),
                apgdCE: try certified?.attackAccuracy ?? tracked(apgd(epsilon: e, options: options), "APGD-CE", e, work.apgd).robustAccuracy(model, x, labels: labels),
                certifiedCROWN: certified?.certifiedAccuracy, inconsistencies: certified?.inconsistencies)
            if options.fgsm {
                var plain = options.attackRecipe
                plain.earlyStop = false  // FGSM is one step: early stopping would change nothing but its bookkeeping
                row.fgsm = try tracked(plain.fgsm(epsilon: e), "FGSM", e, work.fgsm).robustAccuracy(model, x, labels: labels)
            }
            if options.autoAttack {
                let ensemble = AutoAttack.standard(epsilon: e, classes: model.outputFeatures, options: options.attackRecipe)
                row.autoAttack = try tracker.step("AutoAttack-style ensemble at ε \(e)", work: work.autoAttack) { report in
                    try ensemble.run(model, x, labels: labels) { k, done, total in report(k * total + done, ensemble.attacks.count * total) }
                }.robustAccuracy
            }
            return row
        }
        let broken = rows.reduce(0) { $0 + ($1.inconsistencies?.count ?? 0) }
        if broken > 0 { notes.append("Soundness check failed: \(broken) certified rows were broken by APGD-CE (a bug: please report it).") }
        return rows
    }

    /// Median over correctly classified rows of the smallest PGD ε in (0, 0.5] (8 bisection rounds); nil
    /// when more than half resist 0.5.
    static func medianMinimalEpsilon(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], options: FailureReport.Options) throws -> Float? {
        let minimal = try RobustnessCurve.minimalEpsilon(model, x, labels: labels, upper: 0.5) { e in pgd(epsilon: e, options: options) }
        let sorted = minimal.filter { $0 != 0 }.map { $0 ?? .infinity }.sorted()  // 0 marks rows wrong without perturbation
        guard !sorted.isEmpty, sorted[sorted.count / 2].isFinite else { return nil }
        return sorted[sorted.count / 2]
    }
}

/// Plot data computed from results (the renderers only draw it).
enum PlotData {
    /// At most `limit` points, evenly spaced along the curve, first and last kept.
    static func subsample(_ points: [[Double]], limit: Int = 80) -> [[Double]] {
        guard points.count > limit else { return points }
        return (0..<limit).map { points[$0 * (points.count - 1) / (limit - 1)] }
    }

    /// (coverage, risk) points of a risk–coverage curve.
    static func riskCoveragePoints(_ r: RiskCoverage) -> [[Double]] {
        subsample(r.risk.enumerated().map { [Double($0.offset + 1) / Double(r.risk.count), $0.element] })
    }

    /// Histogram of `values` over `bins` equal-width bins on [0, max], split by a flag.
    static func splitHistogram(_ values: [Double], _ flag: [Bool], bins: Int = 20) -> (edges: [Double], yes: [Int], no: [Int]) {
        let top = max(values.filter(\.isFinite).max() ?? 0, 1e-6)
        let edges = (0...bins).map { Double($0) * top / Double(bins) }
        var yes = [Int](repeating: 0, count: bins), no = yes
        for (v, f) in zip(values, flag) where v.isFinite {
            let b = min(max(Int(v / top * Double(bins)), 0), bins - 1)
            if f { yes[b] += 1 } else { no[b] += 1 }
        }
        return (edges, yes, no)
    }
}
