import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing
import _TestSupport

@Suite("training, ensembles, MC dropout, weights")
struct TrainingTests {
    /// A workspace made while one thread is configured and used while two are: Conv2d's unfold buffers
    /// are sized for every possible part, not for the thread count at creation (which overflowed the
    /// scratch once a test raised the count). The logits equal row-by-row results for 1 and 2 threads.
    @Test func convolutionWorkspaceOutlivesAThreadCountChange() throws {
        let model = try ModelSpec.build("input:1x8x8,conv2d:1-4-3-1-1,relu,conv2d:4-6-3-2-1,relu,flatten,linear:96-10", seed: 2)
        var rng = Philox(seed: 9)
        let x = Matrix<Float>(rows: 13, columns: 64).map { _ in Float(rng.uniform()) }
        let workspace = Linalg.withThreads(1) { model.makeWorkspace(capacity: 13) }
        func logits() -> [Float] {
            x.withUnsafeBufferPointer { p in
                let z = model.logits(p.baseAddress!, rows: 13, workspace: workspace, context: .inference)
                return (0..<(13 * 10)).map { z.base[$0] }
            }
        }
        let two = Linalg.withThreads(2) { logits() }, one = Linalg.withThreads(1) { logits() }
        let rows = try (0..<13).flatMap { r in try model.logits(x.sliceRows(r..<(r + 1))).elements }
        #expect(two == one)
        #expect(zip(two, rows).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
    }

    /// The issue's bar: an MLP on the bundled digits reaches ≥ 95 % test accuracy in under 10 s.
    @Test func digitsMLPReaches95PercentQuickly() throws {
        let split = try BundledDatasets.digits().stratifiedSplit(seed: 0)
        var model = try ModelSpec.build("linear:64-128,relu,linear:128-128,relu,linear:128-10", seed: 1)
        let report = try model.train(on: split.train, validation: split.calibration,
                                     options: TrainingOptions(epochs: 40, batchSize: 32, optimizer: .adam(learningRate: 2e-3), seed: 1, patience: 8))
        let accuracy = try model.accuracy(on: split.test)
        print("digits MLP: test accuracy \(accuracy), \(report.epochs) epochs, \(String(format: "%.2f", report.seconds)) s")
        #expect(accuracy >= 0.95)
        // Timing holds for the uninstrumented build only (scripts/sanitize sets FAULTLINE_SANITIZER).
        if ProcessInfo.processInfo.environment["FAULTLINE_SANITIZER"] == nil { #expect(report.seconds < 10) }
        #expect(report.trainLoss.last! < report.trainLoss.first!)
    }

    @Test func sameSeedGivesBitIdenticalWeights() throws {
        let split = try BundledDatasets.digits().stratifiedSplit(seed: 2)
        func run() throws -> [Float] {
            var model = try ModelSpec.build("linear:64-32,relu,dropout:0.2,linear:32-10", seed: 5)
            try model.train(on: split.calibration, options: TrainingOptions(epochs: 3, batchSize: 16, optimizer: .sgd(learningRate: 0.05, momentum: 0.9, weightDecay: 1e-4), seed: 5))
            return model.namedParameters.flatMap { $0.value.elements }
        }
        let a = try run(), b = try run()
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
    }

    @Test func ensembleAndMCDropout() throws {
        let split = try BundledDatasets.digits().stratifiedSplit(seed: 3)
        let ensemble = try DeepEnsemble.train(spec: "linear:64-32,relu,dropout:0.3,linear:32-10", count: 3, on: split.train,
                                              options: TrainingOptions(epochs: 5, batchSize: 32, seed: 0), seed: 10)
        let probabilities = try ensemble.probabilities(split.test.features)
        #expect(probabilities.count == 3)
        #expect(probabilities[0] != probabilities[1])  // different seeds, different members
        let mc = try ensemble.members[0].monteCarloDropout(split.test.features, passes: 4, seed: 7)
        #expect(mc.count == 4 && mc[0] != mc[1])
        let again = try ensemble.members[0].monteCarloDropout(split.test.features, passes: 4, seed: 7)
        #expect(again == mc)
        for row in 0..<5 { #expect(abs(mc[2].row(row).reduce(0, +) - 1) < 1e-5) }
    }

    @Test func weightsRoundTripAndMismatchesAreNamed() throws {
        let model = try ModelSpec.build("linear:4-3,relu,linear:3-2", seed: 1)
        let path = TestScratch.root.appendingPathComponent("w-\(UUID().uuidString).safetensors").path
        try model.save(weights: path)
        let back = try Sequential.load(weights: path, spec: model.spec)
        #expect(back.namedParameters.map { $0.value } == model.namedParameters.map { $0.value })
        let wrong = try #require(throws: ModelError.self) { try Sequential.load(weights: path, spec: "linear:4-5,relu,linear:5-2") }
        #expect(wrong.description.contains("0.weight"))
        let missing = try #require(throws: ModelError.self) { try Sequential.load(weights: path, spec: "linear:4-3,relu,linear:3-2,relu,linear:2-2") }
        #expect(missing.description.contains("4.weight"))
    }

    @Test func specAndInputErrors() throws {
        #expect(throws: ModelError.self) { try ModelSpec.build("linear:4-3,relu,linear:5-2") }
        #expect(throws: ModelError.self) { try ModelSpec.build("relu,linear:4-2") }
        #expect(throws: ModelError.self) { try ModelSpec.build("linear:4-3,softplus") }
        #expect(throws: ModelError.self) { try ModelSpec.build("") }
        let json = try ModelSpec.build(#"{"layers": ["linear:4-3", "tanh", "linear:3-2"]}"#)
        #expect(json.spec == "linear:4-3,tanh,linear:3-2")
        let model = try ModelSpec.build("linear:4-3,relu,linear:3-2")
        #expect(throws: ModelError.self) { try model.logits(Matrix<Float>(rows: 2, columns: 5)) }
        #expect(throws: ModelError.self) { try model.inputGradient(Matrix<Float>(rows: 2, columns: 4), labels: [0, 2]) }
        #expect(throws: ModelError.self) { try model.inputGradient(Matrix<Float>(rows: 2, columns: 4), labels: [0]) }
        var nan = Matrix<Float>(rows: 1, columns: 4)
        nan[0, 1] = .nan
        #expect(throws: ModelError.self) { try model.logits(nan) }
    }
}
