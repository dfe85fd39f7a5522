import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import Foundation

/// The catastrophic-overfitting check of fast adversarial training (Wong et al. 2020, §5.3): after every
/// epoch, the accuracy under PGD-`steps` (L∞, ε, step 2.5·ε/steps, random start, `seed`) on a fixed
/// held-out batch; when it falls by more than `drop` from the previous epoch's, training stops and the
/// previous epoch's weights are kept (FGSM training has collapsed to a model whose gradients no longer
/// point to adversarial examples: FGSM accuracy soars while PGD accuracy drops to near zero).
///
/// Cost per epoch: one PGD run on the batch. `history` holds every epoch's accuracy.
public final class CatastrophicOverfittingCheck: EpochCheck, @unchecked Sendable {
    /// The held-out batch PGD runs on.
    public let batch: LabeledDataset
    /// The PGD budget ε.
    public let epsilon: Float
    /// PGD steps.
    public let steps: Int
    /// The fall in PGD accuracy from one epoch to the next that stops training.
    public let drop: Double
    /// The valid input box.
    public let box: InputBox
    /// Seed of PGD's random starts.
    public let seed: UInt64
    private let lock = NSLock()
    private var accuracies: [Double] = []

    /// Throws `AttackError.invalidParameter` for an empty batch, ε not finite and > 0, steps < 1 or a drop
    /// outside (0, 1].
    public init(batch: LabeledDataset, epsilon: Float, steps: Int = 10, drop: Double = 0.2, box: InputBox = .unit, seed: UInt64 = 0) throws {
        guard batch.count > 0 else { throw AttackError.invalidParameter("the overfitting check needs a non-empty batch") }
        guard epsilon.isFinite, epsilon > 0 else { throw AttackError.invalidParameter("the overfitting check needs a finite ε > 0, got \(epsilon)") }
        guard steps >= 1, steps <= 10_000 else { throw AttackError.invalidParameter("the overfitting check needs 1…10000 PGD steps, got \(steps)") }
        guard drop > 0, drop <= 1 else { throw AttackError.invalidParameter("the accuracy drop must lie in (0, 1], got \(drop)") }
        (self.batch, self.epsilon, self.steps, self.drop, self.box, self.seed) = (batch, epsilon, steps, drop, box, seed)
    }

    /// The PGD accuracy of every epoch checked so far.
    public var history: [Double] { lock.withLock { accuracies } }

    /// Whether the last accuracy fell by more than `drop` from the one before.
    public static func collapsed(_ history: [Double], drop: Double) -> Bool {
        guard history.count >= 2 else { return false }
        return history[history.count - 1] < history[history.count - 2] - drop
    }

    /// Runs PGD on the batch and returns a reason when its accuracy collapsed (see `collapsed`).
    public func stopReason<Model: TrainableClassifier>(_ model: Model, epoch: Int) throws -> String? {
        var pgd = GradientAttack.pgd(epsilon: epsilon, stepSize: AttackRecipe.pgdStepSize(epsilon: epsilon, steps: steps), steps: steps, seed: seed)
        pgd.box = box
        let accuracy = try pgd.run(model, batch.features, labels: batch.labels).robustAccuracy
        return lock.withLock { () -> String? in
            accuracies.append(accuracy)
            guard Self.collapsed(accuracies, drop: drop) else { return nil }
            let before = accuracies[accuracies.count - 2]
            return String(format: "catastrophic overfitting at epoch %d: PGD-%d accuracy on the %d-row check batch fell from %.3f to %.3f; "
                          + "the weights of epoch %d are kept", epoch + 1, steps, batch.count, before, accuracy, epoch)
        }
    }
}
