/// A read-only view of one row of a `Matrix`: no copy, and it keeps the matrix storage alive, so it
/// stays valid (and unchanged) even if the matrix it came from is mutated afterwards (copy-on-write).
public struct MatrixRow<Scalar: LinalgScalar>: RandomAccessCollection, Sendable {
    let storage: AlignedBuffer<Scalar>
    let offset: Int
    public let count: Int

    init(storage: AlignedBuffer<Scalar>, offset: Int, count: Int) {
        self.storage = storage
        self.offset = offset
        self.count = count
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> Scalar {
        precondition(position >= 0 && position < count, "MatrixRow index \(position) out of bounds for \(count)")
        return storage.pointer[offset + position]
    }

    /// Read access to the contiguous elements of the row.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Scalar>) throws -> R) rethrows -> R {
        try withExtendedLifetime(storage) { try body(UnsafeBufferPointer(start: storage.pointer + offset, count: count)) }
    }
}
