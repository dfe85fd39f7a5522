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

    /// The table over `x`, split by rows over `communicator`'s ranks: each rank attacks and certifies its
    /// own rows (`RowSplit.even`), every random draw keyed by the row's index in `x` (`sampleOffset`), and
    /// the per-ε counts are summed (`allreduce`), the inconsistent rows all-gathered; every rank returns the
    /// same table, equal to the one-process table (each row's outcome depends on its own row only).
    /// `tracker` (with `work`'s estimates) hears a step per certification and per attack, and every
    /// attack's row progress.
    static func evaluate(_ model: some DifferentiableClassifier, _ all: Matrix<Float>, labels allLabels: [Int], options: FailureReport.Options,
                         notes: inout [String], tracker: ProgressTracker? = nil, work: PlannedWork? = nil,
                         communicator: any Communicator = SingleProcessCommunicator()) throws -> [FailureReport.RobustnessRow] {
        let tracker = tracker ?? ProgressTracker(plan: [1], callback: nil), work = work ?? PlannedWork.none
        let mine = RowSplit.even(rows: all.rows, rank: communicator.rank, size: communicator.size), offset = mine.lowerBound
        let x = mine.count == all.rows ? all : all.sliceRows(mine), labels = Array(allLabels[mine])
        /// `attack` keyed by the rows' indices in `all`, as a step of the tracker, its rows reported as they finish.
        func tracked(_ attack: any Attack, _ name: String, _ e: Float, _ estimate: Double) -> ReportingAttack {
            ReportingAttack(base: attack.keyed(by: Array(mine)), tracker: tracker, step: "\(name) at ε \(e)", work: estimate)
        }
        /// Rows of this rank's part left robust by `attack` (0 without rows: attacks refuse empty inputs).
        func robust(_ attack: ReportingAttack) throws -> Int {
            x.rows == 0 ? 0 : try attack.attack(model, x, labels: labels, progress: nil).margin.filter { $0 > 0 }.count
        }
        let epsilons = options.epsilons.sorted()
        // APGD-CE on every row, and CROWN's flags beside it with the soundness check, when the model has bound
        // rules; graphs that are not layer chains (residual ONNX models) get IBP's in the certified column
        // (still `certifiedCROWN`).
        var twoSided: [TwoSidedEvaluation.Tally]?
        if options.certify {
            do {
                let propagation = try BoundPropagation(classifier: model)
                let method: BoundPropagation.Method = propagation.supportsCROWN ? .crown : .ibp
                if let reason = propagation.crownUnavailableReason {
                    notes.append("CROWN skipped (\(reason)); the certified column (certifiedCROWN) holds IBP-certified accuracy "
                                 + "instead, a looser lower bound.")
                }
                twoSided = try TwoSidedEvaluation.tally(
                    model, x, labels: labels, epsilons: epsilons,
                    certified: { e in
                        try tracker.step("\(method == .crown ? "CROWN" : "IBP") certification at ε \(e)", work: work.certification) {
                            try propagation.certify(x, labels: labels, region: .init(epsilon: e, box: options.box), method: method)
                        }
                    },
                    attack: { e in tracked(apgd(epsilon: e, options: options), "APGD-CE", e, work.apgd) }, sampleOffset: offset)
            } catch let error as CertificationError {
                notes.append("CROWN skipped: \(error)")
            }
        } else {
            notes.append("Certification not requested.")
        }
        // Per ε, this rank's counts: PGD, APGD-CE (when not already in the two-sided tally), FGSM, AutoAttack.
        var counts: [Int] = []
        for (k, e) in epsilons.enumerated() {
            counts.append(try robust(tracked(pgd(epsilon: e, options: options), "PGD-\(options.pgdSteps)", e, work.pgd)))
            counts.append(try twoSided.map { $0[k].robust } ?? robust(tracked(apgd(epsilon: e, options: options), "APGD-CE", e, work.apgd)))
            counts.append(twoSided?[k].certified ?? 0)
            if options.fgsm {
                var plain = options.attackRecipe
                plain.earlyStop = false  // FGSM is one step: early stopping would change nothing but its bookkeeping
                counts.append(try robust(tracked(plain.fgsm(epsilon: e), "FGSM", e, work.fgsm)))
            }
            if options.autoAttack {
                var ensemble = AutoAttack.standard(epsilon: e, classes: model.outputFeatures, options: options.attackRecipe)
                ensemble.sampleOffset = offset
                counts.append(x.rows == 0 ? 0 : try tracker.step("AutoAttack-style ensemble at ε \(e)", work: work.autoAttack) { report in
                    try ensemble.run(model, x, labels: labels) { k, done, total in report(k * total + done, ensemble.attacks.count * total) }
                }.result.margin.filter { $0 > 0 }.count)
            }
        }
        let total = try communicator.allreduce(counts, .sum)
        // The rows certified and broken, per ε, in row order (ranks hold ascending row ranges).
        let broken = try twoSided.map { tallies in try tallies.map { try communicator.allgatherv($0.inconsistencies) } }
        let n = Double(max(all.rows, 1)), perEpsilon = counts.count / max(epsilons.count, 1)
        let rows = epsilons.enumerated().map { k, e -> FailureReport.RobustnessRow in
            let c = Array(total[(k * perEpsilon)..<((k + 1) * perEpsilon)])
            var row = FailureReport.RobustnessRow(
                epsilon: e, pgd20: Double(c[0]) / n, apgdCE: Double(c[1]) / n,
                certifiedCROWN: twoSided == nil ? nil : Double(c[2]) / n,
                inconsistencies: broken?[k])
            var next = 3
            if options.fgsm { row.fgsm = Double(c[next]) / n; next += 1 }
            if options.autoAttack { row.autoAttack = Double(c[next]) / n }
            return row
        }
        let inconsistent = rows.reduce(0) { $0 + ($1.inconsistencies?.count ?? 0) }
        if inconsistent > 0 { notes.append("Soundness check failed: \(inconsistent) certified rows were broken by APGD-CE (a bug: please report it).") }
        return rows
    }

    /// The attribution's PGD on every row of `x`, split by rows over `communicator`'s ranks (starts keyed by
    /// the row's index in `x`): every rank gets every row's success flag and example, as one process would.
    static func attribution(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], epsilon: Float, options: FailureReport.Options,
                            communicator: any Communicator, progress: @escaping @Sendable (Int, Int) -> Void) throws -> (success: [Bool], adversarial: Matrix<Float>) {
        let mine = RowSplit.even(rows: x.rows, rank: communicator.rank, size: communicator.size)
        guard communicator.size > 1 else {
            let r = try pgd(epsilon: epsilon, options: options).run(model, x, labels: labels, progress: progress)
            return (r.success, r.adversarial)
        }
        var attack = pgd(epsilon: epsilon, options: options)
        attack.sampleOffset = mine.lowerBound
        let local = mine.isEmpty ? nil : try attack.run(model, x.sliceRows(mine), labels: Array(labels[mine]), progress: progress)
        let success = try communicator.allgatherv((local?.success ?? []).map { UInt8($0 ? 1 : 0) }).map { $0 != 0 }
        let adversarial = try communicator.allgatherRows(local?.adversarial ?? Matrix<Float>(rows: 0, columns: x.columns))
        return (success, adversarial)
    }

    /// Median over correctly classified rows of the smallest PGD ε in (0, 0.5] (8 bisection rounds); nil
    /// when more than half resist 0.5. Each rank of `communicator` searches its own rows (keyed by their
    /// index in `x`) and the per-row answers are all-gathered, so every rank returns the one-process median.
    static func medianMinimalEpsilon(_ model: some DifferentiableClassifier, _ all: Matrix<Float>, labels: [Int], options: FailureReport.Options,
                                     communicator: any Communicator = SingleProcessCommunicator()) throws -> Float? {
        let mine = RowSplit.even(rows: all.rows, rank: communicator.rank, size: communicator.size)
        let local = mine.isEmpty ? [] : try RobustnessCurve.minimalEpsilon(model, all.sliceRows(mine), labels: Array(labels[mine]), upper: 0.5,
                                                                           sampleOffset: mine.lowerBound) { e in pgd(epsilon: e, options: options) }
        // 0 marks rows wrong without perturbation, +∞ rows the attack cannot break at 0.5.
        let minimal = try communicator.allgatherv(local.map { $0 ?? .infinity })
        let sorted = minimal.filter { $0 != 0 }.sorted()
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
