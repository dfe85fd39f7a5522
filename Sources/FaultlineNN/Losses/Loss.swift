import FaultlineLinalg

/// Per-sample losses on logits, with their gradients w.r.t. the logits. Reductions are the caller's
/// choice: attacks sum per-sample losses (so a sample's gradient does not depend on the batch), training
/// averages them.
public enum Loss: Sendable, Equatable {
    /// −log softmax(z)[y], computed as logsumexp(z) − z_y. Gradient: softmax(z) − onehot(y).
    case crossEntropy
    /// The Carlini–Wagner margin max_{j≠y} z_j − z_y (positive when misclassified; attacks maximise it).
    /// Gradient: +1 at the best other class, −1 at y.
    case margin
    /// Difference of logits ratio (Croce & Hein 2020), untargeted:
    /// −(z_y − max_{j≠y} z_j) / (z_π1 − z_π3 + 1e-12), π the logits sorted in decreasing order.
    case dlr
    /// Targeted DLR: −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12) for target class t.
    case targetedDLR

    /// Writes per-sample losses and (optionally) the gradient of each sample's loss w.r.t. its logits.
    /// `targets` is required for `.targetedDLR` only. Labels were validated by the caller.
    func evaluate(_ z: MatrixPointer<Float>, labels: UnsafePointer<Int>, targets: UnsafePointer<Int>?,
                  losses: UnsafeMutablePointer<Float>, gradient: MutableMatrixPointer<Float>?) {
        let c = z.columns
        for i in 0..<z.rows {
            let row = z.base + i * z.rowStride
            let y = labels[i]
            let g = gradient.map { $0.base + i * $0.rowStride }
            switch self {
            case .crossEntropy:
                var m = row[0]
                for j in 1..<c where row[j] > m { m = row[j] }
                var s: Float = 0
                for j in 0..<c { s += Float.exp(row[j] - m) }
                losses[i] = m + Float.log(s) - row[y]
                if let g {
                    let inv = 1 / s
                    for j in 0..<c { g[j] = Float.exp(row[j] - m) * inv }
                    g[y] -= 1
                }
            case .margin:
                let other = Loss.bestOther(row, c, excluding: y)
                losses[i] = row[other] - row[y]
                if let g {
                    g.update(repeating: 0, count: c)
                    g[other] = 1
                    g[y] = -1
                }
            case .dlr:
                let (p1, _, p3, _) = Loss.topFour(row, c)
                let other = Loss.bestOther(row, c, excluding: y)
                let numerator = row[y] - row[other]
                let denominator = row[p1] - row[p3] + 1e-12
                losses[i] = -numerator / denominator
                if let g {
                    g.update(repeating: 0, count: c)
                    if y == p3 {
                        // y ranks third, so o = π1 and u = −(v − ε): the loss is (v − ε)/v, constant but for
                        // ε. Its gradient ±ε_f/v², where ε_f = v − (z_π1 − z_π3) is the ε that survived the
                        // float32 sum (0 unless the gap is below ~1e-5), is written directly: the general
                        // formula below would leave rounding noise of −1/v + (v − ε)/v² that sign() turns into
                        // full steps.
                        let survived = denominator - (row[p1] - row[p3])
                        let k = survived / (denominator * denominator)
                        g[p1] = k
                        g[p3] = -k
                    } else {
                        // d/dz of −u/v with u = z_y − z_o, v = z_p1 − z_p3 (+ε): −du/v + u·dv/v².
                        g[y] += -1 / denominator
                        g[other] += 1 / denominator
                        let k = numerator / (denominator * denominator)
                        g[p1] += k
                        g[p3] -= k
                    }
                }
            case .targetedDLR:
                let t = targets![i]
                let (p1, _, p3, p4) = Loss.topFour(row, c)
                let numerator = row[y] - row[t]
                let denominator = row[p1] - 0.5 * (row[p3] + row[p4]) + 1e-12
                losses[i] = -numerator / denominator
                if let g {
                    g.update(repeating: 0, count: c)
                    g[y] += -1 / denominator
                    g[t] += 1 / denominator
                    let k = numerator / (denominator * denominator)
                    g[p1] += k
                    g[p3] -= 0.5 * k
                    g[p4] -= 0.5 * k
                }
            }
        }
    }

    /// Index of the largest logit other than `excluding` (first on ties).
    static func bestOther(_ row: UnsafePointer<Float>, _ c: Int, excluding y: Int) -> Int {
        var best = y == 0 ? 1 : 0
        for j in 0..<c where j != y && row[j] > row[best] { best = j }
        return best
    }

    /// Indices of the four largest logits in decreasing order (ties by lower index); needs c ≥ 4 for
    /// the targeted loss and c ≥ 3 for DLR (missing ranks repeat the last).
    static func topFour(_ row: UnsafePointer<Float>, _ c: Int) -> (Int, Int, Int, Int) {
        var t0 = -1, t1 = -1, t2 = -1, t3 = -1  // no allocation: this runs per sample in attack loops
        for j in 0..<c {
            let v = row[j]
            if t0 == -1 || v > row[t0] {
                (t3, t2, t1, t0) = (t2, t1, t0, j)
            } else if t1 == -1 || v > row[t1] {
                (t3, t2, t1) = (t2, t1, j)
            } else if t2 == -1 || v > row[t2] {
                (t3, t2) = (t2, j)
            } else if t3 == -1 || v > row[t3] {
                t3 = j
            }
        }
        if t1 == -1 { t1 = t0 }
        if t2 == -1 { t2 = t1 }
        if t3 == -1 { t3 = t2 }
        return (t0, t1, t2, t3)
    }

    /// The fewest classes the loss is defined for.
    public var minimumClasses: Int {
        switch self {
        case .crossEntropy: return 1
        case .margin: return 2
        case .dlr: return 3
        case .targetedDLR: return 4
        }
    }
}
