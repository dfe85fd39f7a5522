import FaultlineAnalysis
import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing
import _TestSupport

/// `FailureReport.build` on K simulated ranks (threads sharing memory, the collectives of an MPI job):
/// every rank returns the one-process report. The split work — the robustness table (PGD, APGD-CE with
/// CROWN, FGSM, AutoAttack), the minimal ε and the attribution's attack — is bit-identical on the simd
/// backend; on blas a GEMM rounds a row by its batch's size, so an attack outcome may move by a row.
@Suite("FailureReport.build on several ranks", .serialized)
struct DistributedReportTests {
    static let simd = ProcessInfo.processInfo.environment["FAULTLINE_BACKEND"] == "simd"

    static func options(rows: Int) -> FailureReport.Options {
        var o = FailureReport.Options()
        (o.epsilons, o.robustnessSamples, o.fgsm, o.autoAttack, o.squareQueries, o.minimalEpsilon) = ([0.1, 0, 0.03], rows, true, true, 25, true)
        o.seed = 5
        return o
    }

    @Test(arguments: [(37, 2), (37, 3), (2, 3)])
    func everyRankGetsTheOneProcessReport(rows: Int, ranks: Int) throws {
        let model = FailureReportTests.fixture.model
        let data = FailureReportTests.data()
        let options = Self.options(rows: rows)
        let one = try FailureReport.build(model: model, data: data, options: options)
        let results = SimulatedJob.run(ranks: ranks) { communicator in
            try FailureReport.build(model: model, data: data, options: options, communicator: communicator)
        }
        let tolerance = Self.simd ? 0 : 2 / Double(rows)
        for (rank, result) in results.enumerated() {
            let report = try result.get()
            #expect(report.robustness.count == one.robustness.count)
            for (a, b) in zip(report.robustness, one.robustness) {
                #expect(a.epsilon == b.epsilon && a.certifiedCROWN == b.certifiedCROWN && a.inconsistencies == b.inconsistencies, "rank \(rank)")
                for (u, v) in [(a.pgd20, b.pgd20), (a.apgdCE, b.apgdCE), (a.fgsm!, b.fgsm!), (a.autoAttack!, b.autoAttack!)] {
                    #expect(abs(u - v) <= tolerance, "rank \(rank) of \(ranks), ε \(a.epsilon): \(u) vs \(v)")
                }
            }
            let n = Double(data.test.count)
            if Self.simd {
                #expect(report.medianMinimalEpsilon == one.medianMinimalEpsilon)
                #expect(FailureAttribution.Category.allCases.map { report.attribution.count($0) } == FailureAttribution.Category.allCases.map { one.attribution.count($0) })
                #expect(report.examples?.groups == one.examples?.groups)
            } else {
                #expect(abs(Double(report.attribution.count(.fragile) - one.attribution.count(.fragile))) <= 2, "rank \(rank)")
            }
            #expect(report.reliability.calibration.ece == one.reliability.calibration.ece && report.reliability.accuracy == one.reliability.accuracy)
            #expect(report.attribution.count(.fragile) <= Int(n))
        }
    }
}
