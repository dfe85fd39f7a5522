import Foundation
import FaultlineIO
import FaultlineLinalg
import FaultlineNN

// Lowering of ONNX nodes to GraphModel nodes, with constant folding of shape arithmetic.

extension Importer {
    // MARK: attributes and inputs

    func attribute(_ n: Onnx_NodeProto, _ name: String) -> Onnx_AttributeProto? { n.attribute.first { $0.name == name } }
    func int(_ n: Onnx_NodeProto, _ name: String, _ fallback: Int) -> Int { attribute(n, name).map { Int($0.i) } ?? fallback }
    func float(_ n: Onnx_NodeProto, _ name: String, _ fallback: Float) -> Float { attribute(n, name).map { $0.f } ?? fallback }
    func ints(_ n: Onnx_NodeProto, _ name: String) -> [Int]? { attribute(n, name).map { $0.ints.map { Int($0) } } }

    func entry(_ n: Onnx_NodeProto, _ i: Int) throws -> Entry {
        guard i < n.input.count, !n.input[i].isEmpty, let e = entries[n.input[i]] else {
            throw error(.malformed, n, "input \(i) is missing")
        }
        return e
    }

    func tensorShape(_ n: Onnx_NodeProto, _ i: Int) throws -> [Int] {
        guard case .tensor(let s) = try entry(n, i) else {
            throw error(.unsupportedFeature, n, "input \(i) ('\(n.input[i])') must be computed from the model input, not a constant")
        }
        return s
    }

    func constant(_ n: Onnx_NodeProto, _ i: Int, _ what: String) throws -> (shape: [Int], values: [Float]) {
        switch try entry(n, i) {
        case .constant(let s, let v): return (s, v)
        case .ints(let s, let v) where v.allSatisfy({ $0 != nil }): return (s, v.map { Float($0!) })
        default: throw error(.unsupportedFeature, n, "the \(what) (input \(i), '\(n.input[i])') must be a constant initializer")
        }
    }

    func intValues(_ n: Onnx_NodeProto, _ i: Int) throws -> [Int?] {
        switch try entry(n, i) {
        case .ints(_, let v): return v
        case .constant(_, let v): return v.map { Int($0) }
        case .tensor: throw error(.unsupportedFeature, n, "input \(i) ('\(n.input[i])') must be a constant")
        }
    }

    /// Appends a graph node producing `n.output[0]`, with its shape checked.
    mutating func emit(_ n: Onnx_NodeProto, _ op: GraphOperation, inputs: [String], output: String? = nil) throws {
        let shapes = try inputs.indices.map { i -> [Int] in
            guard case .tensor(let s)? = entries[inputs[i]] else { throw error(.malformed, n, "input '\(inputs[i])' is not a tensor") }
            return s
        }
        let shape: [Int]
        do { shape = try op.outputShape(shapes, node: nodeName(n)) } catch let e as GraphError {
            throw error(.shapeMismatch, n, e.detail)
        }
        let name = output ?? n.output[0]
        nodes.append(GraphModel.Node(name: output == nil ? nodeName(n) : nodeName(n) + "/" + (output! as NSString).lastPathComponent,
                                     operation: op, inputs: inputs, output: name))
        entries[name] = .tensor(shape)
    }

    func unsupported(_ n: Onnx_NodeProto) -> ONNXError {
        let domain = n.domain.isEmpty ? "ai.onnx" : n.domain
        return error(.unsupportedOperator, n, "operator \(n.opType) (domain \(domain), opset \(opset)) is not supported by the importer")
    }

    // MARK: lowering

    mutating func lower(_ n: Onnx_NodeProto) throws {
        guard n.domain.isEmpty || n.domain == "ai.onnx" else { throw unsupported(n) }
        guard !n.output.isEmpty, !n.output[0].isEmpty else { throw error(.malformed, n, "the node has no output") }
        let out = n.output[0]
        switch n.opType {
        case "Constant":
            guard let a = n.attribute.first else { throw error(.malformed, n, "Constant without a value") }
            switch a.name {
            case "value":
                let (shape, values) = try decoder.decode(a.t)
                switch values {
                case .floats(let f): entries[out] = .constant(shape: shape, values: f)
                case .ints(let i): entries[out] = .ints(shape: shape, values: i)
                }
            case "value_float": entries[out] = .constant(shape: [], values: [a.f])
            case "value_floats": entries[out] = .constant(shape: [a.floats.count], values: a.floats)
            case "value_int": entries[out] = .ints(shape: [], values: [Int(a.i)])
            case "value_ints": entries[out] = .ints(shape: [a.ints.count], values: a.ints.map { Int($0) })
            default: throw error(.unsupportedFeature, n, "Constant attribute '\(a.name)'")
            }
        case "Identity", "Dropout", "Cast":
            if n.opType == "Dropout", n.output.count > 1, !n.output[1].isEmpty, readers[n.output[1], default: 0] > 0 {
                throw error(.unsupportedFeature, n, "the dropout mask output is read")
            }
            if n.opType == "Cast", case .tensor = try entry(n, 0),
               int(n, "to", 1) != Onnx_TensorProto.DataType.float.rawValue {
                throw error(.unsupportedFeature, n, "a Cast of a runtime tensor to a non-float type")
            }
            switch try entry(n, 0) {
            case .tensor: try emit(n, .identity, inputs: [n.input[0]])
            case .ints(let s, let v):
                let to = int(n, "to", 7)
                let isFloat = [1, 10, 11, 16].contains(to)
                entries[out] = isFloat && v.allSatisfy({ $0 != nil }) ? .constant(shape: s, values: v.map { Float($0!) }) : .ints(shape: s, values: v)
            case .constant(let s, let v):
                let to = int(n, "to", 1)
                entries[out] = [1, 10, 11, 16].contains(to) || n.opType != "Cast" ? .constant(shape: s, values: v) : .ints(shape: s, values: v.map { Int($0) })
            }
        case "Shape":
            let full: [Int?]
            switch try entry(n, 0) {
            case .tensor(let s): full = [nil] + s.map { Optional($0) }
            case .constant(let s, _), .ints(let s, _): full = s.map { Optional($0) }
            }
            let rank = full.count
            func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
            let start = clamp(int(n, "start", 0)), end = clamp(int(n, "end", rank))
            let slice = start < end ? Array(full[start..<end]) : []
            entries[out] = .ints(shape: [slice.count], values: slice)
        case "Gather":
            guard case .ints(let s, let data) = try entry(n, 0) else {
                throw error(.unsupportedFeature, n, "Gather is supported on shapes only (the Shape/Gather flatten pattern)")
            }
            let indices = try intValues(n, 1)
            guard s.count == 1, int(n, "axis", 0) == 0 else { throw error(.unsupportedFeature, n, "Gather on a shape of rank \(s.count)") }
            let picked = try indices.map { i -> Int? in
                guard let i, i >= -data.count, i < data.count else { throw error(.shapeMismatch, n, "index out of range of \(data.count)") }
                return data[i < 0 ? i + data.count : i]
            }
            let indexShape: [Int]
            if case .ints(let shape, _) = try entry(n, 1) { indexShape = shape } else { indexShape = [indices.count] }
            entries[out] = .ints(shape: indexShape, values: picked)
        case "Unsqueeze", "Squeeze":
            let axes: [Int]? = opset >= 13 && n.input.count > 1 && !n.input[1].isEmpty ? try intValues(n, 1).map { $0 ?? 0 } : ints(n, "axes")
            switch try entry(n, 0) {
            case .tensor(let s):
                let full = [-1] + s
                guard let axes, let shape = reshapeAxes(full, axes, squeeze: n.opType == "Squeeze"), shape.first == -1 else {
                    throw error(.unsupportedFeature, n, "\(n.opType) on the batch axis or without axes")
                }
                try emit(n, .reshape(Array(shape.dropFirst())), inputs: [n.input[0]])
            case .ints(let s, let v):
                guard let shape = reshapeAxes(s, axes ?? [], squeeze: n.opType == "Squeeze") else { throw error(.shapeMismatch, n, "bad axes") }
                entries[out] = .ints(shape: shape, values: v)
            case .constant(let s, let v):
                guard let shape = reshapeAxes(s, axes ?? [], squeeze: n.opType == "Squeeze") else { throw error(.shapeMismatch, n, "bad axes") }
                entries[out] = .constant(shape: shape, values: v)
            }
        case "Concat":
            let axis = int(n, "axis", 0)
            let all = try n.input.indices.map { try entry(n, $0) }
            if all.allSatisfy({ if case .tensor = $0 { return true } else { return false } }) {
                let rank = try tensorShape(n, 0).count + 1
                let a = axis < 0 ? axis + rank : axis
                guard a >= 1 else { throw error(.unsupportedFeature, n, "Concat along the batch axis") }
                try emit(n, .concat(axis: a - 1), inputs: Array(n.input))
            } else {
                var values: [Int?] = []
                for e in all {
                    switch e {
                    case .ints(let s, let v) where s.count <= 1: values += v
                    case .constant(let s, let v) where s.count <= 1: values += v.map { Int($0) }
                    default: throw error(.unsupportedFeature, n, "Concat of a runtime tensor with constants, or of constants of rank > 1")
                    }
                }
                entries[out] = .ints(shape: [values.count], values: values)
            }
        case "Reshape":
            let target = try intValues(n, 1)
            switch try entry(n, 0) {
            case .tensor(let s):
                try emit(n, .reshape(try resolveReshape(n, s, target)), inputs: [n.input[0]])
            case .constant(let s, let v):
                entries[out] = .constant(shape: try resolveConstantReshape(n, s, target), values: v)
            case .ints(let s, let v):
                entries[out] = .ints(shape: try resolveConstantReshape(n, s, target), values: v)
            }
        case "Flatten":
            let s = try tensorShape(n, 0)
            var axis = int(n, "axis", 1)
            if axis < 0 { axis += s.count + 1 }
            guard axis >= 1 && axis <= s.count + 1 else { throw error(.unsupportedFeature, n, "Flatten with axis \(axis) mixes the batch") }
            let head = s[..<(axis - 1)].reduce(1, *), tail = s[(axis - 1)...].reduce(1, *)
            try emit(n, .reshape(axis == 1 ? [tail] : [head, tail]), inputs: [n.input[0]])
        case "Transpose":
            let s = try tensorShape(n, 0)
            let perm = ints(n, "perm") ?? Array((0...s.count).reversed())
            let full = [-1] + s
            guard perm.count == full.count, perm.first == 0, Set(perm) == Set(0..<full.count) else {
                throw error(.unsupportedFeature, n, "a Transpose that moves the batch axis (perm \(perm))")
            }
            let moved = perm.map { full[$0] }
            guard perm.filter({ full[$0] != 1 }) == perm.filter({ full[$0] != 1 }).sorted() else {
                throw error(.unsupportedFeature, n, "a Transpose that moves data (perm \(perm) on \(s)); only layout no-ops are supported")
            }
            try emit(n, .reshape(Array(moved.dropFirst())), inputs: [n.input[0]])
        case "Gemm":
            try lowerGemm(n)
        case "MatMul":
            let s = try tensorShape(n, 0)
            let (bs, b) = try constant(n, 1, "weight")
            guard s.count == 1, bs.count == 2, bs[0] == s[0] else {
                throw error(.shapeMismatch, n, "MatMul of \(s) by a constant \(bs): only [batch, in] × [in, out] is supported")
            }
            let weight = try Matrix(rows: bs[0], columns: bs[1], elements: b).transposed()
            try emit(n, .dense(weight: weight, bias: [Float](repeating: 0, count: bs[1])), inputs: [n.input[0]])
        case "Add", "Sub", "Mul", "Div":
            try lowerBinary(n)
        case "Conv":
            try lowerConv(n)
        case "BatchNormalization":
            try lowerBatchNorm(n)
        case "Relu": try emit(n, .unary(.relu), inputs: [n.input[0]])
        case "LeakyRelu": try emit(n, .unary(.leakyReLU(alpha: float(n, "alpha", 0.01))), inputs: [n.input[0]])
        case "Sigmoid": try emit(n, .unary(.sigmoid), inputs: [n.input[0]])
        case "Tanh": try emit(n, .unary(.tanh), inputs: [n.input[0]])
        case "Erf": try emit(n, .unary(.erf), inputs: [n.input[0]])
        case "Softplus": try emit(n, .unary(.softplus), inputs: [n.input[0]])
        case "Gelu":
            let approximate = attribute(n, "approximate").map { String(decoding: $0.s, as: UTF8.self) } ?? "none"
            guard approximate == "none" || approximate == "tanh" else { throw error(.unsupportedFeature, n, "Gelu approximate='\(approximate)'") }
            try emit(n, .unary(.gelu(tanhApproximation: approximate == "tanh")), inputs: [n.input[0]])
        case "Clip":
            let lower = n.input.count > 1 && !n.input[1].isEmpty ? try constant(n, 1, "minimum").values.first ?? -.infinity : -Float.infinity
            let upper = n.input.count > 2 && !n.input[2].isEmpty ? try constant(n, 2, "maximum").values.first ?? .infinity : Float.infinity
            try emit(n, .unary(.clip(lower: lower, upper: upper)), inputs: [n.input[0]])
        case "MaxPool", "AveragePool":
            try lowerPool(n)
        case "GlobalAveragePool":
            try emit(n, .globalAveragePool, inputs: [n.input[0]])
        case "ReduceMean":
            // torch's AdaptiveAvgPool2d(1) / x.mean((2, 3)) through the dynamo exporter.
            let s = try tensorShape(n, 0)
            let given: [Int]? = opset >= 18 && n.input.count > 1 && !n.input[1].isEmpty ? try intValues(n, 1).map { $0 ?? 0 } : ints(n, "axes")
            let axes = Set((given ?? []).map { $0 < 0 ? $0 + s.count + 1 : $0 })
            guard s.count == 3, axes == [2, 3] else {
                throw error(.unsupportedFeature, n, "ReduceMean is supported over the spatial axes of [batch, C, H, W] only (axes \(given ?? []))")
            }
            if int(n, "keepdims", 1) != 0 {
                try emit(n, .globalAveragePool, inputs: [n.input[0]])
            } else {
                try emit(n, .globalAveragePool, inputs: [n.input[0]], output: out + "/keepdims")
                try emit(n, .reshape([s[0]]), inputs: [out + "/keepdims"])
            }
        case "Greater":
            // Only as the threshold of torch's Softplus: Where(Greater(x, t), x, Softplus(x)).
            _ = try tensorShape(n, 0)
            let (_, t) = try constant(n, 1, "threshold")
            guard t.count == 1 else { throw error(.unsupportedFeature, n, "Greater is supported against a scalar threshold only") }
            masks[out] = (n.input[0], t[0])
        case "Where":
            guard n.input.count == 3, let (x, threshold) = masks[n.input[0]], n.input[1] == x, threshold >= 15,
                  let k = nodes.lastIndex(where: { $0.output == n.input[2] }), case .unary(.softplus) = nodes[k].operation, nodes[k].inputs == [x] else {
                throw error(.unsupportedFeature, n, "Where is supported only as the threshold of Softplus (Where(Greater(x, t ≥ 15), x, Softplus(x)))")
            }
            // Softplus(x) = x to float precision above 15 (the kernel switches at 20; log1p(e^-15) ≈ 3e-7 relative).
            try emit(n, .identity, inputs: [n.input[2]])
        case "Softmax", "LogSoftmax":
            let s = try tensorShape(n, 0)
            var axis = int(n, "axis", -1)
            if axis < 0 { axis += s.count + 1 }
            guard axis >= 1 && axis <= s.count else { throw error(.unsupportedFeature, n, "\(n.opType) over the batch axis") }
            try emit(n, .softmax(axis: axis - 1, log: n.opType == "LogSoftmax"), inputs: [n.input[0]])
        default:
            throw unsupported(n)
        }
    }

    /// `shape` with size-1 axes inserted (`squeeze` false) or removed at `axes` (of the result or input).
    func reshapeAxes(_ shape: [Int], _ axes: [Int], squeeze: Bool) -> [Int]? {
        if squeeze {
            let rank = shape.count
            let normalized = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
            guard normalized.allSatisfy({ $0 >= 0 && $0 < rank && shape[$0] == 1 }) else { return nil }
            return shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
        }
        let rank = shape.count + axes.count
        let normalized = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
        guard normalized.count == axes.count, normalized.allSatisfy({ $0 >= 0 && $0 < rank }) else { return nil }
        var result: [Int] = []
        var k = 0
        for i in 0..<rank {
            if normalized.contains(i) { result.append(1) } else { result.append(shape[k]); k += 1 }
        }
        return result
    }

    /// The per-sample shape of a Reshape of a runtime tensor: the first target entry must be the
    /// batch (the symbolic batch, 0 = copy, -1, or the declared fixed batch size).
    func resolveReshape(_ n: Onnx_NodeProto, _ s: [Int], _ target: [Int?]) throws -> [Int] {
        let count = s.reduce(1, *)
        guard let first = target.first else { throw error(.shapeMismatch, n, "empty target shape") }
        var rest = Array(target.dropFirst())
        let batchLike = first == nil || first == 0 || (first == declaredBatch && declaredBatch != nil)
            || (first == -1 && !rest.contains { $0 == -1 || $0 == nil })
        guard batchLike, !rest.contains(where: { $0 == nil }) else {
            throw error(.unsupportedFeature, n, "a Reshape that changes the batch dimension (target \(target.map { $0.map(String.init) ?? "batch" }))")
        }
        for i in rest.indices where rest[i] == 0 && int(n, "allowzero", 0) == 0 {
            guard i + 1 < s.count + 1, i < s.count else { throw error(.shapeMismatch, n, "0 copies a dimension the input does not have") }
            rest[i] = s[i]
        }
        var values = rest.map { $0! }
        guard let known = Tensor.elementCount(values.filter { $0 != -1 }) else {
            throw error(.shapeMismatch, n, "cannot reshape \(s) to \(target)")
        }
        if let hole = values.firstIndex(of: -1) {
            guard values.filter({ $0 == -1 }).count == 1, known > 0, count % known == 0 else {
                throw error(.shapeMismatch, n, "cannot reshape \(s) to \(target)")
            }
            values[hole] = count / known
        }
        guard values.allSatisfy({ $0 > 0 }), Tensor.elementCount(values) == count else {
            throw error(.shapeMismatch, n, "cannot reshape per-sample \(s) (\(count) values) to \(values)")
        }
        return values
    }

    func resolveConstantReshape(_ n: Onnx_NodeProto, _ s: [Int], _ target: [Int?]) throws -> [Int] {
        let count = s.reduce(1, *)
        var values = try target.enumerated().map { i, v -> Int in
            guard let v else { throw error(.unsupportedFeature, n, "a constant reshaped with the batch size") }
            return v == 0 ? (i < s.count ? s[i] : 0) : v
        }
        if let hole = values.firstIndex(of: -1) {
            guard let known = Tensor.elementCount(values.filter { $0 != -1 }), known > 0 else {
                throw error(.shapeMismatch, n, "cannot reshape \(s) to \(values)")
            }
            values[hole] = count / known
        }
        guard Tensor.elementCount(values) == count else { throw error(.shapeMismatch, n, "cannot reshape constant \(s) to \(values)") }
        return values
    }
}
