import FaultlineLinalg
import FaultlineNN

/// Checks shared by every attack: shapes, labels, targets and the input box.
enum AttackInputs {
    /// Throws `AttackError.invalidInput` naming the first offending row when `x` does not fit the
    /// model, a label or target is out of range, a target equals its label, or an input lies outside `box`.
    static func check(_ model: some DifferentiableClassifier, _ x: Matrix<Float>, labels: [Int], targets: [Int]?, box: ClosedRange<Float>) throws {
        guard box.lowerBound.isFinite, box.upperBound.isFinite else { throw AttackError.invalidParameter("the input box must be finite") }
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
        if let bad = x.withUnsafeBufferPointer({ $0.firstIndex { !($0 >= box.lowerBound && $0 <= box.upperBound) } }) {
            throw AttackError.invalidInput("x[\(bad / x.columns), \(bad % x.columns)] = \(x[bad / x.columns, bad % x.columns]) lies outside the input box \(box); rescale the inputs or set `box`")
        }
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
