import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import Foundation
import Testing

/// The trainer's epoch check and the catastrophic-overfitting check of fast adversarial training.
@Suite("epoch checks")
struct EpochCheckTests {
    static let split = try! BundledDatasets.digits().stratifiedSplit(seed: 0)

    /// Stops at a given epoch.
    struct StopAt: EpochCheck {
        let epoch: Int
        func stopReason<Model: TrainableClassifier>(_ model: Model, epoch: Int) throws -> String? { epoch == self.epoch ? "stop at \(epoch)" : nil }
    }

    /// A stop after epoch k restores the weights after epoch k − 1: they equal k epochs of training.
    @Test(arguments: [1, 3])
    func aStopKeepsTheEpochBefore(epoch: Int) throws {
        func trained(epochs: Int, check: (any EpochCheck)?) throws -> (Sequential, TrainingReport) {
            var model = try ModelSpec.build("linear:64-16,relu,linear:16-10", seed: 3)
            let report = try model.train(on: Self.split.train, options: TrainingOptions(epochs: epochs, seed: 1, epochCheck: check))
            return (model, report)
        }
        let (stopped, report) = try trained(epochs: 6, check: StopAt(epoch: epoch))
        let (reference, _) = try trained(epochs: epoch, check: nil)
        #expect(report.stopReason == "stop at \(epoch)" && report.epochs == epoch + 1)
        #expect(stopped.namedParameters.map(\.value.elements) == reference.namedParameters.map(\.value.elements))
    }

    @Test func collapseRuleAndHistory() throws {
        #expect(!CatastrophicOverfittingCheck.collapsed([0.5], drop: 0.2))
        #expect(!CatastrophicOverfittingCheck.collapsed([0.5, 0.31], drop: 0.2))
        #expect(CatastrophicOverfittingCheck.collapsed([0.5, 0.29], drop: 0.2))
        #expect(!CatastrophicOverfittingCheck.collapsed([0.6, 0.2, 0.1], drop: 0.2))  // against the previous epoch
        let check = try CatastrophicOverfittingCheck(batch: Self.split.calibration.subset(Array(0..<64)), epsilon: 0.1, steps: 5)
        var model = try ModelSpec.build("linear:64-16,relu,linear:16-10", seed: 3)
        let report = try model.train(on: Self.split.train, options: TrainingOptions(epochs: 4, seed: 1, augmentation: try AdversarialTraining.fast(epsilon: 0.1),
                                                                                    epochCheck: check))
        // Fast AT on this MLP does not collapse: every epoch is checked, accuracies in [0, 1].
        #expect(report.stopReason == nil && check.history.count == 4 && check.history.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(throws: AttackError.self) { try CatastrophicOverfittingCheck(batch: Self.split.calibration.subset([]), epsilon: 0.1) }
        #expect(throws: AttackError.self) { try CatastrophicOverfittingCheck(batch: Self.split.calibration, epsilon: 0.1, drop: 0) }
    }
}
