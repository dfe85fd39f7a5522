import FaultlineLinalg
import FaultlineNN

/// Checks shared by every attack: shapes, labels, targets and the input box.
enum AttackInputs {
    /// Throws `AttackError.invalidInput` naming the first offending row when `x` does not fit the
    /// model, a label or target is out of range, a target equals its label, or an input lies outside `box`;
    /// `AttackError.invalidParameter` when the box is not finite or does not fit the model's input.
    /// Returns the box's per-feature bounds for the attack's clamping loops.
    @discardableResult
    static func check(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], targets: [Int]?, box: InputBox) throws -> BoxBounds {
        guard x.columns == model.inputFeatures else {
            throw AttackError.invalidInput("x has \(x.columns) features, the model (\(model.spec)) takes \(model.inputFeatures)")
        }
        guard labels.count == x.rows else { throw AttackError.invalidInput("\(x.rows) rows but \(labels.count) labels") }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= model.outputFeatures }) {
            throw AttackError.invalidInput("label \(labels[bad]) at row \(bad) is outside 0..<\(model.outputFeatures)")
        }
        if let targets {
            guard targets.count == x.rows else { throw AttackError.invalidInput("\(x.rows) rows but \(targets.count) targets") }
            if let bad = targets.indices.first(where: { targets[$0] < 0 || targets[$0] >= model.outputFeatures || targets[$0] == labels[$0] }) {
                throw AttackError.invalidInput("target \(targets[bad]) at row \(bad) is out of range or equals the true label; pick another class")
            }
        }
        let bounds = try BoxBounds(box, for: model)
        if let bad = bounds.firstOutside(x) {
            let (i, j) = (bad / x.columns, bad % x.columns)
            throw AttackError.invalidInput("x[\(i), \(j)] = \(x[i, j]) lies outside the input box \(bounds.lo[j])…\(bounds.hi[j]) of feature \(j) (box \(box)); rescale the inputs or set `box`")
        }
        return bounds
    }

    /// Throws unless ε is finite and ≥ 0.
    static func checkEpsilon(_ epsilon: Float) throws {
        guard epsilon.isFinite, epsilon >= 0 else { throw AttackError.invalidParameter("ε = \(epsilon) must be finite and ≥ 0") }
    }

    /// The rows `indices` of `x`, in that order.
    static func rows(_ x: Matrix<Float>, _ indices: [Int]) -> Matrix<Float> {
        var out = Matrix<Float>(uninitializedRows: indices.count, columns: x.columns)
        let d = x.columns
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (r, i) in indices.enumerated() { (dst.baseAddress! + r * d).update(from: src.baseAddress! + i * d, count: d) }
            }
        }
        return out
    }
}
