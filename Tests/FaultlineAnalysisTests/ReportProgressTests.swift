import FaultlineAnalysis
import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing

/// `FailureReport.build`'s progress: reported inside every stage, in order, with a share that never goes
/// back and ends at 1; watching it changes no number. And options encode the same whatever their set order.
@Suite("FailureReport progress", .serialized)
struct ReportProgressTests {
    @Test func progressIsReportedInsideEveryStageInOrder() throws {
        let model = FailureReportTests.fixture.model
        let test = FailureReportTests.fixture.split.test
        var options = FailureReportTests.options()
        options.fgsm = true
        let copy = FailureReport.ShiftedSet(name: "copy", features: test.features, labels: test.labels)
        var seen: [FailureReport.Progress] = []
        let watched = try FailureReport.build(model: model, data: FailureReportTests.data(shifted: [copy]), options: options) { seen.append($0) }
        let plain = try FailureReport.build(model: model, data: FailureReportTests.data(shifted: [copy]), options: options)

        // Watching changes nothing.
        #expect(watched.robustness.map(\.pgd20) == plain.robustness.map(\.pgd20))
        #expect(watched.robustness.map(\.apgdCE) == plain.robustness.map(\.apgdCE))
        #expect(watched.reliability.calibration.ece == plain.reliability.calibration.ece)
        #expect(watched.setup.stageSeconds.map { Set($0.keys) } == Set(FailureReport.stages))

        // Order, bounds and monotonicity.
        #expect(seen.count >= 20, "\(seen.count) reports")
        #expect(seen.map(\.stageNumber) == seen.map(\.stageNumber).sorted())
        #expect(Set(seen.map(\.stage)) == Set(FailureReport.stages))
        #expect(seen.allSatisfy { $0.stageCount == FailureReport.stages.count && (0...1).contains($0.stageFraction) })
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.fraction <= $1.fraction })
        #expect(seen.last?.fraction == 1 && seen.dropLast().allSatisfy { $0.fraction < 1 })
        for stage in 1...FailureReport.stages.count {
            let mine = seen.filter { $0.stageNumber == stage }
            #expect(zip(mine, mine.dropFirst()).allSatisfy { $0.stageFraction <= $1.stageFraction }, "stage \(stage)")
        }

        // Inside the stages: a step per attack and ε, a step per shifted set, the attribution's attack.
        let steps = Set(seen.map(\.step))
        for e in options.epsilons {
            for name in ["PGD-20", "APGD-CE", "FGSM", "CROWN certification"] { #expect(steps.contains("\(name) at ε \(e)"), "\(name) at ε \(e)") }
        }
        #expect(steps.contains("shifted set 'copy'") && steps.contains("corruption sweep") && steps.contains("Mahalanobis fit on the inputs"))
        #expect(steps.contains { $0.hasPrefix("PGD-20 at ε 0.02 on every test row") })
        let robustness = seen.filter { $0.stage == "robustness" }
        #expect(robustness.contains { $0.stageFraction > 0.2 && $0.stageFraction < 0.8 }, "no report mid-stage")
    }

    /// Skipped stages are passed over: the share still only grows and reaches 1.
    @Test func skippedStagesKeepTheShareMonotone() throws {
        var options = FailureReportTests.options()
        options.skip = [.attacks, .corruptions]
        var seen: [FailureReport.Progress] = []
        _ = try FailureReport.build(model: FailureReportTests.fixture.model, data: FailureReportTests.data(), options: options) { seen.append($0) }
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0.fraction <= $1.fraction } && seen.last?.fraction == 1)
        #expect(!seen.contains { $0.step.contains("PGD") || $0.step == "corruption sweep" })
    }

    /// `skip` is a set; its JSON lists the sections in `Section.allCases` order for every insertion order.
    @Test func skipEncodesInAFixedOrder() throws {
        let all = FailureReport.Options.Section.allCases
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var texts: Set<String> = []
        for permutation in permutations(all) {
            for size in 0...all.count {
                var options = FailureReport.Options()
                options.skip = Set(permutation.prefix(size))
                let json = String(decoding: try encoder.encode(options), as: UTF8.self)
                let expected = all.filter { permutation.prefix(size).contains($0) }.map { "\"\($0.rawValue)\"" }.joined(separator: ",")
                #expect(json.contains("\"skip\":[\(expected)]"), "\(json)")
                if size == all.count { texts.insert(json) }
                let decoded = try JSONDecoder().decode(FailureReport.Options.self, from: Data(json.utf8))
                #expect(decoded.skip == options.skip)
            }
        }
        #expect(texts.count == 1)
    }

    private func permutations<T>(_ items: [T]) -> [[T]] {
        guard items.count > 1 else { return [items] }
        return items.indices.flatMap { i -> [[T]] in
            var rest = items
            let first = rest.remove(at: i)
            return permutations(rest).map { [first] + $0 }
        }
    }
}
