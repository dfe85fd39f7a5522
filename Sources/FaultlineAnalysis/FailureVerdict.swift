/// The opening verdict of a report: what fails most, what to try next, and the striking signals, in
/// words. Every finding is produced by one stated rule from the report's numbers (nothing else is read),
/// so the same report always gives the same verdict, and each rule is tested on constructed numbers.
///
/// Rules, in the order the findings appear (a rule whose condition is false says nothing):
/// - `dominantFailure`: with errors, the error category (out of distribution, confident and wrong,
///   low-confidence) with the most rows, its share of the errors, and the remedy that targets it —
///   OOD rejection at the report's threshold, recalibration and more data, or abstaining below the
///   confidence threshold. Ties go to the category listed first in `FailureAttribution.Category`.
/// - `noErrors`: no test error at all.
/// - `fragile`: at least a quarter of the right predictions flip within the attribution ε — adversarial
///   training is the remedy.
/// - `temperatureWorse` / `temperatureHelps`: temperature scaling raised the ECE, or cut it by at least a
///   quarter from an ECE ≥ 0.02.
/// - `overconfidentUnderShift`: a shifted set on which the model is more confident than on clean inputs
///   (MSP AUROC < 0.5), one finding per set.
/// - `invisibleShift`: a labelled shifted set that costs ≥ 0.1 accuracy yet the Mahalanobis detector barely
///   sees (AUROC < 0.6).
/// - `silentErrors`: a shifted set with errors that are confident and not flagged.
/// - `certificationStops`: CROWN certifies something at a smaller ε but nothing from ε = e on.
/// - `attackGap`: AutoAttack's robust accuracy is ≥ 0.05 below PGD's at some ε (PGD alone overstates
///   robustness).
/// - `unsound`: a certified row was broken by the attack (a bug).
public struct FailureVerdict: Codable, Sendable, Equatable {
    /// The rules, each described in the type's documentation; the raw value is the stable identifier.
    public enum Rule: String, Codable, CaseIterable, Sendable {
        /// The error category with the most rows.
        case dominantFailure
        /// No test errors at all.
        case noErrors
        /// Right predictions the attack flips within the attribution ε.
        case fragile
        /// Temperature scaling made the test ECE worse.
        case temperatureWorse
        /// Temperature scaling made the test ECE better.
        case temperatureHelps
        /// Confidence stays high on a shifted set whose accuracy drops.
        case overconfidentUnderShift
        /// A shifted set the detector barely sees (AUROC < 0.6).
        case invisibleShift
        /// A shifted set with confident errors that are not flagged.
        case silentErrors
        /// Certification certifies something at a smaller ε but nothing from some ε on.
        case certificationStops
        /// AutoAttack is ≥ 0.05 below PGD at some ε.
        case attackGap
        /// A certified row was broken by the attack (a bug).
        case unsound
    }
    /// One finding: the rule that fired and its sentence.
    public struct Finding: Codable, Sendable, Equatable {
        /// The rule.
        public var rule: Rule
        /// The finding as a sentence, with the numbers it rests on.
        public var text: String
    }
    /// The findings, in rule order.
    public var findings: [Finding]

    /// The findings of `report` (see the rules above). O(rows of the report's tables).
    public init(_ r: FailureReport) {
        var out: [Finding] = []
        func say(_ rule: Rule, _ text: String) { out.append(Finding(rule: rule, text: text)) }
        func pct(_ x: Double) -> String { String(format: "%.0f %%", 100 * x) }
        func num(_ x: Double) -> String { String(format: "%.3g", x) }
        let a = r.attribution, t = a.thresholds
        let kinds: [FailureAttribution.Category] = [.shift, .confidentError, .flagged]
        let errors = kinds.reduce(0) { $0 + a.count($1) }
        if errors == 0 {
            say(.noErrors, "No test errors: every one of the \(a.categories.count) test rows is predicted right.")
        } else {
            let top = kinds.dropFirst().reduce(kinds[0]) { a.count($1) > a.count($0) ? $1 : $0 }  // ties: the first in `kinds`
            let share = Double(a.count(top)) / Double(errors)
            let what: String
            switch top {
            case .shift:
                what = "are out of distribution (a robustness failure): reject inputs whose Mahalanobis score exceeds \(num(t.outOfDistributionScore)), "
                    + "and collect training data like them"
            case .confidentError:
                what = "are confident and wrong (p ≥ \(num(t.confidence)); a reliability failure): recalibrate (temperature scaling) so confidence "
                    + "can be trusted, and add training data of the classes involved"
            default:
                what = "are made with low confidence (p < \(num(t.confidence))): the model signals its doubt — abstain below that confidence "
                    + "(selective prediction) or defer those rows"
            }
            say(.dominantFailure, "Most errors (\(pct(share)), \(a.count(top)) of \(errors)) \(what).")
        }
        let right = a.count(.fragile) + a.count(.robust)
        if right > 0, Double(a.count(.fragile)) >= 0.25 * Double(right) {
            say(.fragile, "\(a.count(.fragile)) of \(right) right predictions (\(pct(Double(a.count(.fragile)) / Double(right)))) flip under \(t.attack) "
                + "within ε = \(num(Double(t.epsilon))): the model is fragile — adversarial training targets this.")
        }
        if let after = r.reliability.calibrationAfterTemperature, let T = r.reliability.temperature {
            let before = r.reliability.calibration.ece
            if after.ece > before {
                say(.temperatureWorse, "Temperature scaling (T = \(num(T))) made ECE worse (\(num(before)) → \(num(after.ece))): "
                    + "the calibration set does not represent the test set, or is too small.")
            } else if before >= 0.02 && after.ece <= 0.75 * before {
                say(.temperatureHelps, "Temperature scaling (T = \(num(T))) cuts ECE from \(num(before)) to \(num(after.ece)): recalibrate before deploying.")
            }
        }
        for s in r.shift {
            if s.mspAUROC < 0.5 {
                say(.overconfidentUnderShift, "The model is more confident on \(s.shift) than on clean inputs (MSP AUROC \(num(s.mspAUROC))): "
                    + "its confidence cannot flag this shift.")
            }
            // The detector that decides "out of distribution": on the penultimate features when the model has them.
            let auroc = s.featureMahalanobisAUROC ?? s.mahalanobisAUROC
            if let accuracy = s.accuracy, r.reliability.accuracy - accuracy >= 0.1, auroc < 0.6 {
                say(.invisibleShift, "\(s.shift) costs \(num(r.reliability.accuracy - accuracy)) accuracy yet the Mahalanobis detector "
                    + "(\(s.featureMahalanobisAUROC == nil ? "inputs" : "penultimate features")) barely sees it (AUROC \(num(auroc))).")
            }
            if let silent = s.silentConfidentErrors, let e = s.errors, silent > 0 {
                say(.silentErrors, "On \(s.shift), \(silent) of its \(e) errors are silent: confident and not flagged as out of distribution.")
            }
        }
        let certified = r.robustness.sorted { $0.epsilon < $1.epsilon }.compactMap { row in row.certifiedCROWN.map { (row.epsilon, $0) } }
        if let first = certified.firstIndex(where: { $0.1 == 0 }), first > 0, certified[..<first].contains(where: { $0.1 > 0 }),
           certified[first...].allSatisfy({ $0.1 == 0 }) {
            say(.certificationStops, "\(r.certificationMethod) certifies nothing from ε = \(num(Double(certified[first].0))) on "
                + "(\(pct(certified[first - 1].1)) at ε = \(num(Double(certified[first - 1].0)))).")
        }
        if let gap = r.robustness.filter({ $0.autoAttack != nil }).max(by: { $0.pgd20 - $0.autoAttack! < $1.pgd20 - $1.autoAttack! }),
           gap.pgd20 - gap.autoAttack! >= 0.05 {
            say(.attackGap, "AutoAttack finds \(num(gap.pgd20 - gap.autoAttack!)) lower robust accuracy than PGD at ε = \(num(Double(gap.epsilon))): "
                + "PGD alone overstates robustness.")
        }
        let broken = r.robustness.reduce(0) { $0 + ($1.inconsistencies?.count ?? 0) }
        if broken > 0 { say(.unsound, "\(broken) certified rows were broken by the attack: a soundness bug — please report it.") }
        findings = out
    }
}

extension FailureReport: CustomStringConvertible {
    /// The title, the test accuracy and the verdict's first finding, in one line — not the report's
    /// arrays (`FailureReportRenderer.text` gives the whole page as text).
    public var description: String {
        let first = FailureVerdict(self).findings.first?.text
        return "\(title): \(samples.test) test rows, accuracy \(String(format: "%.4g", reliability.accuracy))" + (first.map { ". \($0)" } ?? "")
    }
}
