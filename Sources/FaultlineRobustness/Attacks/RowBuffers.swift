import FaultlineLinalg

/// Row operations on the flat buffers of the attacks' batch states (rows of `width` floats).
extension AlignedBuffer where Element == Float {
    /// Exchanges rows a and b (batch compaction: finished samples move behind the live ones).
    func swapRows(_ a: Int, _ b: Int, width: Int) {
        guard a != b else { return }
        let p = pointer + a * width, q = pointer + b * width
        for j in 0..<width { swap(&p[j], &q[j]) }
    }

    /// Copies row k into row i of `matrix`.
    func copyRow(_ k: Int, width: Int, into matrix: inout Matrix<Float>, row i: Int) {
        matrix.withUnsafeMutableBufferPointer { m in (m.baseAddress! + i * width).update(from: pointer + k * width, count: width) }
    }
}
