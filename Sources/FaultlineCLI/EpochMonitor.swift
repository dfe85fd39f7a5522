import FaultlineIO
import FaultlineNN
import FaultlineRobustness
import Foundation

/// `faultline train`'s line per epoch under a defence: the epoch, its training loss, the clean accuracy
/// and (with an ε) the PGD-10 accuracy on up to 256 held-out rows (the validation split, else the first
/// training rows), and the seconds the epoch took (the monitor's own evaluation excluded). It runs as
/// the trainer's `EpochCheck`, after any `inner` check (whose decision it returns), so it sees the
/// weights of each finished epoch. Cost: one forward pass and PGD-10 over ≤ 256 rows per epoch (the
/// PGD-10 accuracy of fast AT's overfitting check, same rows, ε and seed, when that is the inner check).
final class EpochMonitor: EpochCheck, @unchecked Sendable {
    private let held: LabeledDataset
    private let attack: GradientAttack?
    private let epochs: Int
    private let inner: EpochCheck?
    private let write: (String) -> Void
    private var last = Date()
    /// The epoch's mean training loss, set by the progress callback before the check runs.
    var loss = Double.nan

    init(held: LabeledDataset, epsilon: Float?, box: InputBox, seed: UInt64, epochs: Int, inner: EpochCheck?, write: @escaping (String) -> Void) throws {
        self.held = held.subset(Array(0..<min(256, held.count)))
        if let epsilon {
            var pgd = GradientAttack.pgd(epsilon: epsilon, stepSize: AttackRecipe.pgdStepSize(epsilon: epsilon, steps: 10), steps: 10, seed: seed)
            pgd.box = box
            attack = pgd
        } else {
            attack = nil
        }
        self.epochs = epochs
        self.inner = inner
        self.write = write
    }

    func stopReason<Model: TrainableClassifier>(_ model: Model, epoch: Int) throws -> String? {
        let seconds = Date().timeIntervalSince(last)
        let reason = try inner?.stopReason(model, epoch: epoch)
        var line = String(format: "epoch %d/%d: loss %.4f", epoch + 1, epochs, loss)
        if held.count > 0 {
            line += String(format: ", held-out (%d rows) clean %.3f", held.count, try model.accuracy(on: held))
            if let attack {
                // Fast AT's overfitting check has just run the same PGD-10 on the same rows: not twice.
                let robust = try (inner as? CatastrophicOverfittingCheck)?.history.last
                    ?? attack.run(model, held.features, labels: held.labels).robustAccuracy
                line += String(format: ", PGD-10 ε %g %.3f", attack.epsilon, robust)
            }
        }
        line += String(format: ", %.1f s", seconds)
        write(line)
        last = Date()
        return reason
    }
}
