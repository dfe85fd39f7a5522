import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import Foundation
import Testing

/// Learning-rate schedules: the multipliers' closed forms (PyTorch's MultiStepLR and CosineAnnealingLR,
/// Wong et al.'s triangular cycle), and their effect on training: a zero factor from epoch k freezes the
/// weights (they equal k epochs of training), and `.constant` is the unscheduled trainer bit for bit.
@Suite("learning-rate schedules")
struct LearningRateScheduleTests {
    @Test func multipliersFollowTheirClosedForms() {
        let piecewise = LearningRateSchedule.piecewise(milestones: [3, 5], factor: 0.1)
        #expect([0, 2, 3, 4, 5, 9].map { piecewise.multiplier(step: 0, epoch: $0, totalSteps: 10) } == [1, 1, 0.1, 0.1, Float(0.1) * 0.1, Float(0.1) * 0.1])
        for t in stride(from: 0, through: 100, by: 7) {
            let cosine = LearningRateSchedule.cosine.multiplier(step: t, epoch: 0, totalSteps: 100)
            #expect(abs(Double(cosine) - (1 + cos(Double.pi * Double(t) / 100)) / 2) < 1e-7)
            let cycle = LearningRateSchedule.oneCycle.multiplier(step: t, epoch: 0, totalSteps: 100)
            #expect(abs(Double(cycle) - (t <= 50 ? Double(t) / 50 : Double(100 - t) / 50)) < 1e-7, "t \(t)")
        }
        #expect(LearningRateSchedule.oneCycle.multiplier(step: 50, epoch: 0, totalSteps: 100) == 1)
        #expect(LearningRateSchedule.constant.multiplier(step: 17, epoch: 4, totalSteps: 20) == 1)
    }

    @Test(arguments: [OptimizerKind.sgd(learningRate: 0.05, momentum: 0.9), .adam()])
    func zeroFactorFreezesTheWeights(optimizer: OptimizerKind) throws {
        let split = try BundledDatasets.digits().stratifiedSplit(seed: 0)
        func trained(epochs: Int, schedule: LearningRateSchedule) throws -> [[Float]] {
            var model = try ModelSpec.build("linear:64-16,relu,linear:16-10", seed: 1)
            try model.train(on: split.train, options: TrainingOptions(epochs: epochs, batchSize: 64, optimizer: optimizer, seed: 2, schedule: schedule))
            return model.namedParameters.map(\.value.elements)
        }
        #expect(try trained(epochs: 5, schedule: .piecewise(milestones: [2], factor: 0)) == trained(epochs: 2, schedule: .constant))
        #expect(try trained(epochs: 3, schedule: .constant) != trained(epochs: 3, schedule: .cosine))
    }
}
