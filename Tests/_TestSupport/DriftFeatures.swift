import FaultlineLinalg

/// Seeded n×d features for the drift tests: a sum of three uniforms (normal-ish, mean 0) scaled by 2 on
/// Philox stream `stream`, plus `shift` on feature 1; `rounded` puts them on a grid of 0.5 (ties) and
/// copies rows 0..<n/4 onto the next n/4 (duplicates); feature `constant` (if any) is 3 throughout.
public func driftFeatures(_ n: Int, _ d: Int, seed: UInt64, stream: UInt64, shift: Float = 0, rounded: Bool = false,
                          constant: Int? = nil) -> Matrix<Float> {
    var rng = Philox(seed: seed, stream: stream)
    var x = Matrix<Float>(rows: n, columns: d)
    for i in 0..<n {
        for j in 0..<d {
            var v = Float(rng.uniform() + rng.uniform() + rng.uniform() - 1.5) * 2 + (j == 1 ? shift : 0)
            if rounded { v = (v * 2).rounded() / 2 }
            x[i, j] = j == constant ? 3 : v
        }
    }
    if rounded { for i in 0..<(n / 4) { for j in 0..<d { x[n / 4 + i, j] = x[i, j] } } }
    return x
}
