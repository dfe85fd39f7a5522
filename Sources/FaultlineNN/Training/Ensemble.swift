import FaultlineIO
import FaultlineLinalg
import Foundation

/// Deep ensembles and MC dropout: stacks of class probabilities, [members or passes] × N × C, the
/// input of the uncertainty decomposition.
public struct DeepEnsemble: Sendable {
    /// The members, each a complete model of the same architecture.
    public var members: [Sequential]

    /// Trains `count` members of architecture `spec`, member m initialised and shuffled with seed
    /// `seed + m`, one after another (each uses every BLAS thread, so nothing is oversubscribed).
    public static func train(spec: String, count: Int, on data: LabeledDataset, validation: LabeledDataset? = nil,
                             options: TrainingOptions, seed: UInt64 = 0,
                             progress: ((Int, Int, Double) -> Void)? = nil) throws -> DeepEnsemble {
        precondition(count > 0, "an ensemble needs at least one member")
        var members: [Sequential] = []
        for m in 0..<count {
            var model = try ModelSpec.build(spec, seed: seed &+ UInt64(m))
            var o = options
            o.seed = seed &+ UInt64(m)
            try model.train(on: data, validation: validation, options: o) { epoch, loss in progress?(m, epoch, loss) }
            members.append(model)
        }
        return DeepEnsemble(members: members)
    }

    /// An ensemble of already trained members (same input and output widths, so their probabilities can be averaged).
    public init(members: [Sequential]) { self.members = members }

    /// Softmax probabilities of every member, one N × C matrix per member.
    public func probabilities(_ x: Matrix<Float>) throws -> [Matrix<Float>] {
        try members.map { try Linalg.softmaxRows($0.logits(x)) }
    }

    /// The weight file of member `m` when an ensemble is saved under one name: `OUT_m.EXT` for `OUT.EXT`
    /// (`faultline train --members`), e.g. ensemble.safetensors → ensemble_0.safetensors.
    public static func memberPath(_ out: String, _ m: Int) -> String {
        let url = URL(fileURLWithPath: out)
        let ext = url.pathExtension
        return url.deletingPathExtension().path + "_\(m)" + (ext.isEmpty ? "" : "." + ext)
    }
}

extension Sequential {
    /// MC dropout: `passes` stochastic forward passes with dropout active (pass t uses the Philox
    /// stream (seed, t), so results do not depend on batch size), softmax probabilities per pass.
    public func monteCarloDropout(_ x: Matrix<Float>, passes: Int, seed: UInt64) throws -> [Matrix<Float>] {
        precondition(passes > 0, "MC dropout needs at least one pass")
        return try (0..<passes).map { t in
            try Linalg.softmaxRows(logits(x, context: ForwardContext(training: true, seed: seed, pass: UInt64(t))))
        }
    }
}
