import Foundation

extension TrainingReport: CustomStringConvertible {
    /// "30 epochs in 0.61 s, final training loss 0.1234, best validation accuracy 0.9443 (epoch 17)", plus the
    /// stop reason when an epoch check stopped training.
    public var description: String {
        var text = "\(epochs) epochs in \(String(format: "%.3g", seconds)) s"
        if let loss = trainLoss.last { text += String(format: ", final training loss %.4g", loss) }
        if let best = validationAccuracy.max() {
            text += String(format: ", best validation accuracy %.4g", best) + (bestEpoch.map { " (epoch \($0 + 1))" } ?? "")
        }
        return text + (stopReason.map { "; stopped: \($0)" } ?? "")
    }
}
