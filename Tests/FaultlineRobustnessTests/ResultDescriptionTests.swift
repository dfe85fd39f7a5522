import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// `print(result)` gives the headline numbers in one short line, whatever the number of samples: the
/// per-sample arrays never appear.
@Suite("result descriptions")
struct ResultDescriptionTests {
    @Test func attackResultsPrintOneShortLine() throws {
        let split = try BundledDatasets.digits().stratifiedSplit(seed: 0)
        var model = try ModelSpec.build("linear:64-16,relu,linear:16-10", seed: 0)
        let training = try model.train(on: split.train, validation: split.calibration, options: TrainingOptions(epochs: 3, seed: 0))
        let x = split.test.features, y = split.test.labels
        let result = try GradientAttack.pgd(epsilon: 0.1, stepSize: 0.025, steps: 5, seed: 1).run(model, x, labels: y)
        let sweep = try AttackSweep(.pgd, recipe: AttackRecipe(steps: 3)).run(model, x, labels: y, epsilons: [0, 0.1])
        let corruptions = try CorruptionSweep.evaluate(model, x, labels: y, shape: ImageShape(channels: 1, height: 8, width: 8), seed: 0)
        for (text, needle) in [(result.description, String(format: "%.4g", result.robustAccuracy)),
                               (sweep.description, String(format: "%.4g", sweep.rows[1].robustAccuracy)),
                               (corruptions.description, String(format: "%.4g", corruptions.meanAccuracy)),
                               (training.description, "3 epochs")] {
            #expect(!text.contains("\n") && text.count < 240 && text.contains(needle), "\(text)")
        }
        #expect(result.description.contains("\(x.rows) samples"))
    }
}
