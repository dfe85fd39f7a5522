import FaultlineLinalg
import FaultlineNN

/// An `InputBox` expanded to one lower and one upper bound per input feature of a model, in aligned
/// memory that the clamping loops of the attacks read beside the rows (`lo[j] ≤ x[j] ≤ hi[j]`). Built
/// once per attack run: the steps themselves allocate nothing.
final class BoxBounds: @unchecked Sendable {
    let lower: AlignedBuffer<Float>
    let upper: AlignedBuffer<Float>
    let features: Int

    /// Throws `AttackError.invalidParameter` when a bound is not finite or the box's channels do not
    /// fit the model's input (see `InputBox.perFeature`).
    init(_ box: InputBox, for model: some DifferentiableClassifier) throws {
        guard box.isFinite else { throw AttackError.invalidParameter("the input box must be finite, got \(box)") }
        let bounds: (lower: [Float], upper: [Float])
        do {
            bounds = try box.perFeature(features: model.inputFeatures, image: model.inputImageShape)
        } catch ModelError.shapeMismatch(let message) {
            throw AttackError.invalidParameter(message)
        }
        features = model.inputFeatures
        (lower, upper) = (AlignedBuffer(uninitializedCount: features), AlignedBuffer(uninitializedCount: features))
        lower.pointer.update(from: bounds.lower, count: features)
        upper.pointer.update(from: bounds.upper, count: features)
    }

    var lo: UnsafePointer<Float> { UnsafePointer(lower.pointer) }
    var hi: UnsafePointer<Float> { UnsafePointer(upper.pointer) }

    /// The first flat index of `x` (rows of `features`) outside the box, or nil.
    func firstOutside(_ x: Matrix<Float>) -> Int? {
        let d = features, lo = self.lo, hi = self.hi
        return x.withUnsafeBufferPointer { p in p.indices.first { !(p[$0] >= lo[$0 % d] && p[$0] <= hi[$0 % d]) } }
    }
}
