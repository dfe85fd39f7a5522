import FaultlineIO
import FaultlineLinalg
import FaultlineNN
import FaultlineRobustness
import FaultlineShift
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer entry point past the decoders: the input is decoded once as a `.safetensors` file and
/// loaded the way the CLI loads user files — as a model (spec from the metadata, checked against the
/// tensors before anything is built), as a detector file, and, for every tensor, converted to a
/// matrix and to labels. A model or detector that loads must then run on a small batch. Every outcome
/// is a value or a typed Faultline error: never a trap, a hang or an allocation sized by the input alone.
///
/// The loaders run on the decoded value (`Sequential.load(weights: SafeTensors.File)`,
/// `DetectorFile.load(SafeTensors.File)`), the code the path-based loaders share after reading the
/// file; one input in 32 (chosen by a hash of its bytes, so a crash reproduces) is also written to a
/// file (under /dev/shm when there is one) and loaded through the paths, and both routes must agree:
/// the same error text, or equal tensors, parameters and scores.
let path = (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : FileManager.default.temporaryDirectory.path)
    + "/fuzz-weights-\(getpid()).safetensors"
/// Removes the file at a normal exit (a crash leaves it, beside the crash file).
let removeAtExit: Void = { atexit { unlink(path) } }()

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    _ = removeAtExit
    let decoded = outcome { try SafeTensors.decode(bytes, name: path) }
    guard case .success(let file) = decoded else {
        if viaPath(bytes) { agree(decoded, outcome { try SafeTensors.read(path) }, ==) }
        return 0
    }
    let model = outcome { () -> (Sequential, [Float]?) in
        let model = try Sequential.load(weights: file, name: path)
        return (model, try run(model))
    }
    let detector = outcome { () -> [Float]? in try score(DetectorFile.load(file, name: path)) }
    _ = outcome {
        for (_, tensor) in file.tensors {
            _ = try tensor.matrix(Float.self)
            _ = tensor.values(as: Double.self).map { Int(exactly: $0) }
        }
    }
    if viaPath(bytes) {
        agree(decoded, outcome { try SafeTensors.read(path) }, ==)
        agree(model, outcome { () -> (Sequential, [Float]?) in
            let model = try Sequential.load(weights: path)
            return (model, try run(model))
        }) { a, b in
            a.0.spec == b.0.spec && a.0.namedParameters.map(\.value.elements) == b.0.namedParameters.map(\.value.elements) && same(a.1, b.1)
        }
        agree(detector, outcome { () -> [Float]? in try score(DetectorFile.load(path)) }, same)
    }
    return 0
}

/// Logits of a model on a 2-row batch, unless the model is too large to run at fuzzing speed.
func run(_ model: Sequential) throws -> [Float]? {
    guard model.inputFeatures <= 1 << 16 && model.namedParameters.reduce(0, { $0 + $1.1.count }) <= 1 << 20 else { return nil }
    return try model.logits(Matrix(rows: 2, columns: model.inputFeatures)).elements
}

/// Scores of a detector on a 3-row batch, unless its dimension is too large.
func score(_ detector: DetectorFile.Detector) throws -> [Float]? {
    let dimension: Int
    switch detector {
    case .mahalanobis(let d): dimension = d.dimension
    case .perClassMahalanobis(let d): dimension = d.dimension
    case .relativeMahalanobis(let d): dimension = d.classes.dimension
    case .knn(let d): dimension = d.dimension
    case .vim(let d): dimension = d.weight.columns
    }
    return dimension <= 1 << 16 ? try detector.score(Matrix(rows: 3, columns: dimension)) : nil
}

/// Runs `body`; a Faultline error is an expected outcome, anything else stops the fuzzer.
func outcome<T>(_ body: () throws -> T) -> Result<T, any Error> {
    do {
        return .success(try body())
    } catch {
        guard error is IOError || error is ModelError || error is ShiftError || error is LinalgError else {
            fatalError("unexpected error type: \(type(of: error)): \(error)")
        }
        return .failure(error)
    }
}

/// Whether this input also goes through the path-based loaders (1 in 32, by an FNV-1a hash of its
/// size and of up to 64 bytes spread over it); if so, writes it to `path` (plain write(2), no fsync).
func viaPath(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var hash = (2_166_136_261 ^ UInt32(truncatingIfNeeded: bytes.count)) &* 16_777_619
    for k in 0..<min(bytes.count, 64) { hash = (hash ^ UInt32(bytes[k * bytes.count / min(bytes.count, 64)])) &* 16_777_619 }
    guard hash & 31 == 0 else { return false }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot create \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var offset = 0
    while offset < bytes.count {
        let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        guard written > 0 else { fatalError("cannot write \(path): \(String(cString: strerror(errno)))") }
        offset += written
    }
    return true
}

/// The in-memory and the path-based route must give the same error text or equal values.
func agree<T>(_ memory: Result<T, any Error>, _ file: Result<T, any Error>, _ equal: (T, T) -> Bool) {
    switch (memory, file) {
    case (.success(let a), .success(let b)) where equal(a, b): return
    case (.failure(let a), .failure(let b)) where "\(a)" == "\(b)": return
    default: fatalError("loading from memory and from \(path) disagree: \(memory) vs \(file)")
    }
}

/// Bitwise equality of optional score vectors (NaN equals NaN).
func same(_ a: [Float]?, _ b: [Float]?) -> Bool {
    a?.map(\.bitPattern) == b?.map(\.bitPattern)
}
