import Foundation
import FaultlineLinalg
import FaultlineNN

// Lowering of the parameterised ONNX operators: Gemm, Conv, BatchNormalization (folded where legal),
// pooling, and elementwise arithmetic with constants.

extension Importer {
    mutating func lowerGemm(_ n: Onnx_NodeProto) throws {
        let s = try tensorShape(n, 0)
        guard s.count == 1 else { throw error(.shapeMismatch, n, "Gemm needs a [batch, features] input, got per-sample \(s)") }
        guard int(n, "transA", 0) == 0 else { throw error(.unsupportedFeature, n, "transA = 1 (the input would be transposed across the batch)") }
        let (bs, b) = try constant(n, 1, "weight")
        guard bs.count == 2 else { throw error(.shapeMismatch, n, "the weight must be 2-d, got \(bs)") }
        let alpha = float(n, "alpha", 1), beta = float(n, "beta", 1)
        var weight = try Matrix(rows: bs[0], columns: bs[1], elements: b)
        if int(n, "transB", 0) == 0 { weight = weight.transposed() }
        if alpha != 1 { weight = weight.map { $0 * alpha } }
        guard weight.columns == s[0] else {
            throw error(.shapeMismatch, n, "the weight \(bs) (transB \(int(n, "transB", 0))) takes \(weight.columns) features, the input has \(s[0])")
        }
        var bias = [Float](repeating: 0, count: weight.rows)
        if n.input.count > 2, !n.input[2].isEmpty {
            let (cs, c) = try constant(n, 2, "bias")
            guard c.count == weight.rows || c.count == 1, cs.filter({ $0 != 1 }).count <= 1 else {
                throw error(.shapeMismatch, n, "the bias \(cs) does not broadcast to [\(weight.rows)]")
            }
            bias = (0..<weight.rows).map { beta * c[c.count == 1 ? 0 : $0] }
        }
        try emit(n, .dense(weight: weight, bias: bias), inputs: [n.input[0]])
    }

    mutating func lowerConv(_ n: Onnx_NodeProto) throws {
        let s = try tensorShape(n, 0)
        guard s.count == 3 else { throw error(.unsupportedFeature, n, "only 2-d convolutions ([C, H, W] inputs) are supported, got per-sample \(s)") }
        let (ws, w) = try constant(n, 1, "weight")
        guard ws.count == 4 else { throw error(.shapeMismatch, n, "the weight must be [out, in/groups, kH, kW], got \(ws)") }
        let kernel = ints(n, "kernel_shape") ?? [ws[2], ws[3]]
        let strides = ints(n, "strides") ?? [1, 1], dilations = ints(n, "dilations") ?? [1, 1]
        guard kernel == [ws[2], ws[3]], strides.count == 2, dilations.count == 2 else {
            throw error(.shapeMismatch, n, "kernel_shape \(kernel), strides \(strides), dilations \(dilations) do not fit the weight \(ws)")
        }
        let pads = try resolvePads(n, input: [s[1], s[2]], kernel: kernel, strides: strides, dilations: dilations)
        var bias = [Float](repeating: 0, count: ws[0])
        if n.input.count > 2, !n.input[2].isEmpty {
            let (bs, b) = try constant(n, 2, "bias")
            guard b.count == ws[0] else { throw error(.shapeMismatch, n, "bias \(bs) for \(ws[0]) output channels") }
            bias = b
        }
        let weight = try Matrix(rows: ws[0], columns: ws[1] * ws[2] * ws[3], elements: w)
        let c = GraphOperation.Convolution(weight: weight, bias: bias, inChannels: s[0], kernel: (ws[2], ws[3]), stride: (strides[0], strides[1]),
                                           pads: (pads[0], pads[1], pads[2], pads[3]), dilation: (dilations[0], dilations[1]),
                                           groups: int(n, "group", 1))
        try emit(n, .convolution(c), inputs: [n.input[0]])
    }

    /// ONNX pads [top, left, bottom, right], from `pads` or `auto_pad`; every geometry value must be
    /// in 0...65536 (so no shape arithmetic can overflow).
    func resolvePads(_ n: Onnx_NodeProto, input: [Int], kernel: [Int], strides: [Int], dilations: [Int]) throws -> [Int] {
        guard (kernel + strides + dilations + (ints(n, "pads") ?? [])).allSatisfy({ $0 >= 0 && $0 <= 1 << 16 }) else {
            throw error(.unsupportedFeature, n, "kernel_shape \(kernel), strides \(strides), dilations \(dilations), pads \(ints(n, "pads") ?? []) "
                        + "must lie in 0...65536")
        }
        let autoPad = attribute(n, "auto_pad").map { String(decoding: $0.s, as: UTF8.self) } ?? "NOTSET"
        switch autoPad {
        case "NOTSET", "":
            let pads = ints(n, "pads") ?? [0, 0, 0, 0]
            guard pads.count == 4, pads.allSatisfy({ $0 >= 0 }) else { throw error(.shapeMismatch, n, "pads \(pads) must be 4 non-negative values") }
            return pads
        case "VALID": return [0, 0, 0, 0]
        case "SAME_UPPER", "SAME_LOWER":
            var begin = [0, 0], end = [0, 0]
            for i in 0..<2 {
                let out = (input[i] + strides[i] - 1) / strides[i]
                let total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - input[i], 0)
                begin[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                end[i] = total - begin[i]
            }
            return [begin[0], begin[1], end[0], end[1]]
        default: throw error(.unsupportedFeature, n, "auto_pad '\(autoPad)'")
        }
    }

    mutating func lowerBatchNorm(_ n: Onnx_NodeProto) throws {
        let s = try tensorShape(n, 0)
        guard int(n, "training_mode", 0) == 0, n.output.dropFirst().allSatisfy({ $0.isEmpty || readers[$0, default: 0] == 0 }) else {
            throw error(.unsupportedFeature, n, "BatchNormalization in training mode (export the model after model.eval())")
        }
        let parts = try (1...4).map { try constant(n, $0, ["scale", "bias", "mean", "variance"][$0 - 1]).values }
        let channels = s.first ?? 0
        guard parts.allSatisfy({ $0.count == channels }) else {
            throw error(.shapeMismatch, n, "statistics of sizes \(parts.map(\.count)) for \(channels) channels")
        }
        let epsilon = Double(float(n, "epsilon", 1e-5))
        let scale = (0..<channels).map { Float(Double(parts[0][$0]) / (Double(parts[3][$0]) + epsilon).squareRoot()) }
        let shift = (0..<channels).map { Float(Double(parts[1][$0]) - Double(parts[2][$0]) * Double(scale[$0])) }
        // Fold into the producer when it is a convolution or dense layer read only by this node.
        let x = n.input[0]
        if readers[x, default: 0] == 1, let k = nodes.lastIndex(where: { $0.output == x }) {
            switch nodes[k].operation {
            case .convolution(var c):
                c.weight = scaleRows(c.weight, scale)
                c.bias = (0..<channels).map { c.bias[$0] * scale[$0] + shift[$0] }
                nodes[k].operation = .convolution(c)
                fold(k, into: n)
                return
            case .dense(let w, let b) where s.count == 1:
                nodes[k].operation = .dense(weight: scaleRows(w, scale), bias: (0..<channels).map { b[$0] * scale[$0] + shift[$0] })
                fold(k, into: n)
                return
            default: break
            }
        }
        try emit(n, .channelAffine(scale: scale, shift: shift), inputs: [x])
    }

    /// Node k now computes n's output (n was folded into it); its own output tensor no longer exists.
    mutating func fold(_ k: Int, into n: Onnx_NodeProto) {
        entries[n.output[0]] = entries[nodes[k].output]
        entries[nodes[k].output] = nil
        nodes[k].output = n.output[0]
    }

    func scaleRows(_ m: Matrix<Float>, _ scale: [Float]) -> Matrix<Float> {
        var out = m
        for r in 0..<m.rows {
            for c in 0..<m.columns { out[r, c] = m[r, c] * scale[r] }
        }
        return out
    }

    mutating func lowerPool(_ n: Onnx_NodeProto) throws {
        let s = try tensorShape(n, 0)
        guard s.count == 3 else { throw error(.unsupportedFeature, n, "only 2-d pooling ([C, H, W] inputs) is supported, got per-sample \(s)") }
        guard n.output.count < 2 || n.output[1].isEmpty || readers[n.output[1], default: 0] == 0 else {
            throw error(.unsupportedFeature, n, "the MaxPool indices output is read")
        }
        guard let kernel = ints(n, "kernel_shape"), kernel.count == 2 else { throw error(.malformed, n, "kernel_shape must have 2 values") }
        let strides = ints(n, "strides") ?? [1, 1], dilations = ints(n, "dilations") ?? [1, 1]
        guard strides.count == 2, dilations == [1, 1] else { throw error(.unsupportedFeature, n, "strides \(strides), dilations \(dilations) (only 1 is supported)") }
        let pads = try resolvePads(n, input: [s[1], s[2]], kernel: kernel, strides: strides, dilations: dilations)
        let pooling = GraphOperation.Pooling(n.opType == "MaxPool" ? .max : .average, kernel: (kernel[0], kernel[1]), stride: (strides[0], strides[1]),
                                             pads: (pads[0], pads[1], pads[2], pads[3]), ceilMode: int(n, "ceil_mode", 0) != 0,
                                             countIncludePad: int(n, "count_include_pad", 0) != 0)
        try emit(n, .pool(pooling), inputs: [n.input[0]])
    }

    mutating func lowerBinary(_ n: Onnx_NodeProto) throws {
        let op: GraphOperation.ElementwiseBinary = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div][n.opType]!
        let a = try entry(n, 0), b = try entry(n, 1)
        switch (a, b) {
        case (.tensor, .tensor):
            try emit(n, .binary(op), inputs: [n.input[0], n.input[1]])
        case (.tensor(let s), _), (_, .tensor(let s)):
            let tensorOnLeft: Bool
            if case .tensor = a { tensorOnLeft = true } else { tensorOnLeft = false }
            var (cs, c) = try constant(n, tensorOnLeft ? 1 : 0, "constant operand")
            if cs.count == s.count + 1 {
                guard cs[0] == 1 else { throw error(.shapeMismatch, n, "the constant \(cs) has a batch dimension of \(cs[0])") }
                cs.removeFirst()
            }
            guard cs.count <= s.count else { throw error(.shapeMismatch, n, "the constant \(cs) has a higher rank than the tensor [batch] + \(s)") }
            try emit(n, .constantBinary(op, constant: c, shape: cs, constantOnLeft: !tensorOnLeft), inputs: [n.input[tensorOnLeft ? 0 : 1]])
        default:
            entries[n.output[0]] = try foldConstants(n, op, a, b)
        }
    }

    /// Elementwise arithmetic on two constants (same shape, or one a single value).
    func foldConstants(_ n: Onnx_NodeProto, _ op: GraphOperation.ElementwiseBinary, _ a: Entry, _ b: Entry) throws -> Entry {
        func apply<T>(_ x: [T], _ y: [T], _ f: (T, T) -> T) throws -> [T] {
            guard x.count == y.count || x.count == 1 || y.count == 1 else { throw error(.unsupportedFeature, n, "constant operands of \(x.count) and \(y.count) values") }
            return (0..<max(x.count, y.count)).map { f(x[x.count == 1 ? 0 : $0], y[y.count == 1 ? 0 : $0]) }
        }
        switch (a, b) {
        case (.ints(let sa, let x), .ints(let sb, let y)) where x.allSatisfy({ $0 != nil }) && y.allSatisfy({ $0 != nil }):
            let v = try apply(x.map { $0! }, y.map { $0! }) { u, v in
                switch op { case .add: u + v; case .sub: u - v; case .mul: u * v; case .div: v == 0 ? 0 : u / v }
            }
            return .ints(shape: x.count >= y.count ? sa : sb, values: v)
        default:
            let (sa, x) = try constant(n, 0, "operand"), (sb, y) = try constant(n, 1, "operand")
            let v = try apply(x, y) { u, v in
                switch op { case .add: u + v; case .sub: u - v; case .mul: u * v; case .div: u / v }
            }
            return .constant(shape: x.count >= y.count ? sa : sb, values: v)
        }
    }
}
