import ArgumentParser
import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineReliability
import FaultlineRobustness
import Foundation

/// Reading user inputs for the subcommands, with errors that end the process with exit code 2.
enum Inputs {
    /// Features from .npy/.npz(first array or `name`)/.safetensors/CSV/IDX, as an N × D float32 matrix
    /// (higher ranks flattened per sample). `FILE.npz:NAME` names one array of an archive.
    static func features(_ path: String, array: String? = nil) throws -> Matrix<Float> {
        try tensor(path, array: array).matrix(Float.self, name: path)
    }

    /// Integer labels from the same formats (any integer or integral float dtype).
    static func labels(_ path: String, array: String? = nil) throws -> [Int] {
        let t = try tensor(path, array: array)
        let values = t.values(as: Double.self)
        if let bad = values.firstIndex(where: { $0.rounded() != $0 || !$0.isFinite }) {
            throw IOError(.invalidValue, file: path, "label at index \(bad) is \(values[bad]), not an integer")
        }
        return values.map { Int($0) }
    }

    static func tensor(_ path: String, array: String?) throws -> Tensor {
        // FILE.npz:NAME (or FILE.safetensors:NAME) picks one array of an archive.
        if array == nil, let range = path.range(of: ".npz:") ?? path.range(of: ".safetensors:") {
            let file = String(path[..<range.upperBound].dropLast()), name = String(path[range.upperBound...])
            return try tensor(file, array: name)
        }
        let lower = path.lowercased()
        if lower.hasSuffix(".npy") { return try NPY.read(path) }
        if lower.hasSuffix(".npz") {
            if let array { return try NPZ.read(path, array: array) }
            guard let first = try NPZ.read(path).first else { throw IOError(.invalidValue, file: path, "the archive holds no arrays") }
            return first.tensor
        }
        if lower.hasSuffix(".safetensors") {
            let file = try SafeTensors.read(path)
            guard let t = array.flatMap({ file[$0] }) ?? (array == nil ? file.tensors.first?.tensor : nil) else {
                throw IOError(.invalidValue, file: path, "no tensor '\(array ?? "")' (tensors: \(file.tensors.map(\.name).joined(separator: ", ")))")
            }
            return t
        }
        if lower.hasSuffix(".csv") { return Tensor(try CSV.read(path).features) }
        return try IDX.read(path)
    }

    /// Runs `body`, turning Faultline's typed errors into one clear line on stderr and exit code 2.
    static func guarded<T>(_ command: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            switch error {
            case is IOError, is ModelError, is LinalgError, is AttackError, is ShiftError, is ReliabilityError, is CertificationError, is CLIError:
                printError("faultline \(command): \(error)")
            default:
                guard let message = (error as? LocalizedError)?.errorDescription else { throw error }
                printError("faultline \(command): \(message)")
            }
        }
        throw ExitCode(2)
    }
}

/// A bad command-line input the library cannot see (e.g. two files that disagree).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Inputs {
    /// The image layout of rows of `features` values: `--shape CxHxW` if given (checked against the
    /// count), else the model's first convolution's input, else one square channel; nil when none fits.
    static func imageShape(_ shape: String?, model: Sequential, features: Int) throws -> ImageShape? {
        if let shape {
            let d = shape.split(separator: "x").compactMap { Int($0) }
            guard d.count == 3, d.allSatisfy({ $0 > 0 }), d[0] * d[1] * d[2] == features else {
                throw CLIError("--shape \(shape) must be CxHxW with C·H·W = \(features) features")
            }
            return ImageShape(channels: d[0], height: d[1], width: d[2])
        }
        if let conv = model.layers.first as? Conv2d { return conv.input }
        let side = Int(Double(features).squareRoot().rounded())
        return side * side == features && side >= 2 ? ImageShape(channels: 1, height: side, width: side) : nil
    }
}
